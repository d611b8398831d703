"""A real SMTP server in the test process (aiosmtpd), on 127.0.0.1 at a free port,
that keeps the messages it accepts; it can be told to answer 4xx or 5xx."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Mailbox:
    """The messages the server accepted, and the answer it gives to the next ones."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse_with: str | None = None
    """An SMTP answer (``"451 try later"``) given instead of accepting."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        if self.refuse_with:
            return self.refuse_with
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages sent to ``address``."""
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def text(message: EmailMessage) -> str:
        """The text body of a message."""
        part = message.get_body(preferencelist=("plain",))
        return "" if part is None else str(part.get_content())  # type: ignore[union-attr]

    @staticmethod
    def html(message: EmailMessage) -> str:
        """The HTML body of a message."""
        part = message.get_body(preferencelist=("html",))
        return "" if part is None else str(part.get_content())  # type: ignore[union-attr]


def free_port() -> int:
    """A TCP port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(**options: Any) -> Iterator[tuple[Mailbox, int]]:
    """Run a server for the block; yields its mailbox and port."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield mailbox, int(controller.port)
    finally:
        controller.stop()
