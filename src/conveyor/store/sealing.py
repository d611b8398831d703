"""Secrets the stores must read back (webhook and incoming-hook secrets, token signing
keys) are kept sealed: encrypted and authenticated with Fernet (AES-128-CBC and
HMAC-SHA256) under a key derived from the server's secret key.

A copy of the database (a dump, a backup) then reveals none of them without the key.
A sealed value reads ``sealed:v1:<token>``; a value without that prefix was written
before sealing existed and is read as it is until :func:`seal_secrets` seals it
(``conveyor serve`` does so at start, and seals again what a previous key sealed:
that is how the key is changed).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conveyor.domain.errors import ConveyorError
from conveyor.store.protocol import Store

log = logging.getLogger("conveyor.store")

SEALED_PREFIX = "sealed:v1:"
_PURPOSE = b"conveyor: secrets kept in the database, v1"


KEY_CHECK = "conveyor key check"
"""The value sealed in the ``key_check`` table: whoever opens it has the right key."""


class WrongSecretKey(ConveyorError):
    """This key did not seal the database's secrets: found before anything is written."""

    def __init__(self) -> None:
        super().__init__(
            "the secrets in this database were sealed with another key: give every node "
            "and command the same CONVEYOR_SECRET_KEY (or, without it, the same "
            "secret.key in CONVEYOR_DATA_DIR)"
        )


class UnreadableSigningKeys(ConveyorError):
    """Token signing keys are stored, but none opens with this server's key."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"none of the {count} token signing keys in the database opens with this "
            "server's key: give the key that sealed them as CONVEYOR_PREVIOUS_SECRET_KEY, "
            "or delete the rows of signing_keys to make a new one (every token signed "
            "before is then refused)"
        )


class NoSecretKey(ConveyorError):
    """No key was given and none was made yet."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no secret key: set CONVEYOR_SECRET_KEY as the server has it, or run where "
            f"the server keeps its data ({path} does not exist)"
        )


class UnreadableSecret(RuntimeError):
    """A stored secret does not open with this box's keys (the key check passed, so
    the row was written with another key, or changed)."""

    def __init__(self) -> None:
        super().__init__("a stored secret does not open with this server's key")


class SecretBox:
    """Seals with one key; opens what it or the previous keys (a key being changed)
    sealed."""

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        self._current = _fernet(secret_key)
        self._any = MultiFernet([self._current, *map(_fernet, previous_keys)])
        self._reported: set[str] = set()

    def seal(self, plaintext: str) -> str:
        """``plaintext`` encrypted and authenticated, as stored."""
        return SEALED_PREFIX + self._current.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The plaintext of a stored value; ``UnreadableSecret`` if no key of this box
        sealed it."""
        if not is_sealed(stored):
            return stored
        try:
            return self._any.decrypt(stored.removeprefix(SEALED_PREFIX)).decode("utf-8")
        except InvalidToken:
            raise UnreadableSecret() from None

    def open_or_report(self, stored: str | None, what: str) -> str | None:
        """:meth:`open` for a read that must not fail on one row: ``None`` for none, or
        for a secret that does not open (logged once per ``what``, never the secret)."""
        if stored is None:
            return None
        try:
            return self.open(stored)
        except UnreadableSecret:
            self.report_unreadable(what)
            return None

    def report_unreadable(self, what: str) -> None:
        """Log, once per ``what``, that its secret does not open (never the secret)."""
        if what not in self._reported:
            self._reported.add(what)
            log.error("%s: its secret does not open with this server's key", what)

    def open_optional(self, stored: str | None) -> str | None:
        """:meth:`open`, passing ``None`` through."""
        return None if stored is None else self.open(stored)

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is sealed with this box's own key (not in plain, not by a
        previous key)."""
        if not is_sealed(stored):
            return False
        try:
            self._current.decrypt(stored.removeprefix(SEALED_PREFIX))
        except InvalidToken:
            return False
        return True


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ValueError("the secret key is empty")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        secret_key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def is_sealed(stored: str) -> bool:
    """Whether ``stored`` was written by :meth:`SecretBox.seal`."""
    return stored.startswith(SEALED_PREFIX)


def required_box(box: SecretBox | None, owner: object) -> SecretBox:
    """``box``, which a store that keeps secrets must have been given."""
    if box is None:
        raise TypeError(f"{type(owner).__name__} keeps secrets: give it a SecretBox")
    return box


async def seal_secrets(store: Store, box: SecretBox, queries: list[tuple[str, str]]) -> int:
    """Seal with ``box``'s key the secrets kept in plain (written before sealing
    existed) or sealed by one of its previous keys; how many were sealed again. A
    secret that opens with none of its keys is left as it is, and logged.

    Each pair of ``queries`` is for one column: the first lists ``id`` and ``stored``
    for every row; the second sets ``:sealed_value`` where row ``:id`` still holds
    ``:stored`` (so a change made in between wins) and returns the rows it changed.
    """
    sealed = 0
    for listing, seal in queries:
        [found] = await store.run_sql([(listing, {})], write=False)
        for row in found:
            stored = row["stored"]
            if not stored or box.is_current(stored):
                continue  # no secret to hide, or sealed as it should be
            try:
                value = box.seal(box.open(stored))
            except UnreadableSecret:
                log.error("a secret (row %s) does not open with this key: left as it is", row["id"])
                continue
            params = {"id": row["id"], "stored": stored, "sealed_value": value}
            [changed] = await store.run_sql([(seal, params)], write=True)
            sealed += len(changed)
    return sealed


def key_from_file(path: Path, *, create: bool = True) -> str:
    """The key kept in ``path``; made (random, readable by its owner only, on disk
    before it is used) if missing and ``create``, else ``NoSecretKey``.

    Several processes starting at once agree on one key: the new key is written to a
    temporary file that is then linked into place, which fails if another got there
    first.
    """
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    if not create:
        raise NoSecretKey(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink()
    _sync_folder(path.parent)
    return _read_key(path)


def _sync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` survive a power loss."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_key(path: Path) -> str:
    key = path.read_text("utf-8").strip()
    if not key:
        raise ConveyorError(f"the secret key file {path} is empty")
    return key
