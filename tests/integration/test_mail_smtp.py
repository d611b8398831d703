"""The SMTP transport against a real server (aiosmtpd, in this process): STARTTLS with
a login, a wrong password (temporary: the settings, not the mail), a server that
answers 5xx (permanent) or 4xx (temporary)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from conveyor.domain.mail import Rendered
from conveyor.mail.smtp import DeliveryError, SmtpConfig, SmtpTransport
from tests.smtp_server import Mailbox, smtp_server

pytestmark = pytest.mark.anyio

MAIL = Rendered("Job #1 started", "text", "<p>html</p>")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _accept_conveyor(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"conveyor",
        b"s3cret-pass",
    )
    return AuthResult(success=good)


async def test_starttls_with_a_login_sends_and_a_wrong_password_is_temporary(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    options = {
        "tls_context": server_tls,
        "require_starttls": True,
        "authenticator": _accept_conveyor,
        "auth_required": True,
    }
    with smtp_server(**options) as (mailbox, port):
        config = SmtpConfig(
            "127.0.0.1",
            port,
            "starttls",
            "conveyor",
            "s3cret-pass",
            "jobs@acme.test",
            timeout=5,
            tls_context=client_tls,
        )
        await SmtpTransport(config).send("ops@acme.test", MAIL, "conveyor.1")
        [message] = mailbox.messages
        assert (
            message["Subject"] == "Job #1 started"
            and Mailbox.html(message).strip() == "<p>html</p>"
        )
        wrong = SmtpConfig(
            "127.0.0.1", port, "starttls", "conveyor", "nope", timeout=1, tls_context=client_tls
        )
        with pytest.raises(DeliveryError) as caught:
            await SmtpTransport(wrong).send("ops@acme.test", MAIL, "conveyor.2")
        assert not caught.value.permanent and "nope" not in caught.value.message
        assert "s3cret-pass" not in repr(config)


async def test_a_5xx_answer_is_permanent_and_a_4xx_answer_is_not() -> None:
    with smtp_server() as (mailbox, port):
        transport = SmtpTransport(SmtpConfig("127.0.0.1", port, "none", timeout=5))
        mailbox.refuse_with = "554 no thanks"
        with pytest.raises(DeliveryError) as refused:
            await transport.send("ops@acme.test", MAIL, "conveyor.1")
        mailbox.refuse_with = "452 mailbox full"
        with pytest.raises(DeliveryError) as later:
            await transport.send("ops@acme.test", MAIL, "conveyor.2")
    assert refused.value.permanent and "554" in refused.value.message
    assert not later.value.permanent and "452" in later.value.message
