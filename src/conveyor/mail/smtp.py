"""Sending a mail over SMTP with aiosmtplib: the :class:`MailTransport` the mailer uses.

A failure is a :class:`DeliveryError`; ``permanent`` when the server refused the mail
with a 5xx answer (it will not take it later either). Anything else (no connection,
a timeout, a 4xx answer, a refused login) is temporary: the mailer tries again.
The password is handed to the SMTP client only; it is never logged nor in an error.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal, Protocol

import aiosmtplib

from conveyor.domain.errors import InvalidInput
from conveyor.domain.mail import Rendered
from conveyor.settings import Settings

TlsMode = Literal["starttls", "tls", "none"]
ERROR_LIMIT = 500


class DeliveryError(Exception):
    """A mail was not sent; ``permanent``: sending it again will not help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message[:ERROR_LIMIT]
        self.permanent = permanent


class MailTransport(Protocol):
    """Sends one mail or raises :class:`DeliveryError`."""

    async def send(self, recipient: str, content: Rendered, message_id: str) -> None:
        """Send ``content`` to ``recipient``."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to reach the SMTP server."""

    host: str
    port: int = 587
    tls: TlsMode = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "conveyor@localhost"
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)
    """Trust for the server's certificate (default: the system's)."""


def build_message(sender: str, recipient: str, content: Rendered, message_id: str) -> EmailMessage:
    """A ``multipart/alternative`` message: the text body, then the HTML one."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = content.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=message_id, domain=domain)
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


def _is_permanent(exc: aiosmtplib.SMTPException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return False  # the operator's settings, not the mail: fixed settings send it
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= r.code < 600 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return 500 <= exc.code < 600
    return False


class SmtpTransport:
    """A :class:`MailTransport` over SMTP (a new connection per mail)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, recipient: str, content: Rendered, message_id: str) -> None:
        """Send one mail within the configured timeout."""
        config = self.config
        message = build_message(config.sender, recipient, content, message_id)
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.tls == "tls",
                start_tls=config.tls == "starttls",
                tls_context=config.tls_context,
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPException as exc:
            raise DeliveryError(_describe(exc), _is_permanent(exc)) from None
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None


def _describe(exc: aiosmtplib.SMTPException) -> str:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return f"recipient refused: {first.code} {first.message}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.code} {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def smtp_config(settings: Settings) -> SmtpConfig:
    """The SMTP settings of a server; ``InvalidInput`` when ``smtp_host`` is unset."""
    if not settings.smtp_host:
        raise InvalidInput("smtp_host", "is not set: mail is off (set CONVEYOR_SMTP_HOST)")
    password = settings.smtp_password
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        tls=settings.smtp_tls,
        username=settings.smtp_username,
        password=password.get_secret_value() if password else None,
        sender=settings.mail_from,
        timeout=settings.mail_timeout_seconds,
    )
