"""The mail settings: checked at start with messages that name the setting, and the
SMTP password read from a file and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.mail.smtp import smtp_config
from conveyor.settings import load_settings


def test_mail_is_off_by_default_and_on_with_a_host() -> None:
    settings = load_settings()
    assert settings.smtp_host is None and settings.smtp_port == 587
    assert settings.smtp_tls == "starttls" and settings.mail_from == "conveyor@localhost"
    with pytest.raises(InvalidInput, match="smtp_host"):
        smtp_config(settings)
    config = smtp_config(load_settings(smtp_host="mail.example.com", smtp_tls="tls"))
    assert config.host == "mail.example.com" and config.tls == "tls"


def test_the_password_comes_from_a_file_and_stays_out_of_reprs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret-pass\n")
    monkeypatch.setenv("CONVEYOR_SMTP_PASSWORD_FILE", str(secret))
    settings = load_settings(smtp_host="mail.example.com", smtp_username="conveyor")
    config = smtp_config(settings)
    assert config.password == "s3cret-pass"
    assert "s3cret-pass" not in repr(settings) and "s3cret-pass" not in repr(config)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"smtp_tls": "ssl"}, "smtp_tls"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"mail_from": "not an address"}, "mail_from"),
        ({"mail_templates_dir": "/no/such/folder"}, "mail_templates_dir"),
        ({"smtp_username": "conveyor"}, "smtp_password"),
        ({"mail_timeout_seconds": 0}, "mail_timeout_seconds"),
    ],
)
def test_a_bad_mail_setting_is_refused_by_name(flags: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        load_settings(**flags)
