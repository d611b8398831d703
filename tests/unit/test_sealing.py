"""Sealing the secrets the stores keep: round trips, another key, the key file."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conveyor.domain.errors import ConveyorError
from conveyor.store.sealing import (
    NoSecretKey,
    SecretBox,
    UnreadableSecret,
    is_sealed,
    key_from_file,
)


def test_a_sealed_secret_opens_with_the_same_key_only() -> None:
    box = SecretBox("one key")
    sealed = box.seal("whsec_ünïcode")
    assert is_sealed(sealed)
    assert "whsec" not in sealed
    assert box.seal("whsec_ünïcode") != sealed  # a fresh nonce every time
    assert SecretBox("one key").open(sealed) == "whsec_ünïcode"
    with pytest.raises(UnreadableSecret):
        SecretBox("another key").open(sealed)


def test_a_tampered_secret_does_not_open() -> None:
    box = SecretBox("one key")
    sealed = box.seal("whsec_b2xk")
    flipped = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    with pytest.raises(UnreadableSecret):
        box.open(flipped)


def test_a_value_kept_before_sealing_reads_as_it_is() -> None:
    box = SecretBox("one key")
    assert box.open("whsec_b2xk") == "whsec_b2xk"
    assert box.open_optional(None) is None
    assert not is_sealed("whsec_b2xk")


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretBox("")
    with pytest.raises(ValueError, match="empty"):
        SecretBox("new key", [""])


def test_a_new_key_opens_what_the_previous_one_sealed_and_seals_with_its_own() -> None:
    old = SecretBox("old key")
    by_old = old.seal("whsec_b2xk")
    changing = SecretBox("new key", ["old key"])
    assert changing.open(by_old) == "whsec_b2xk"
    assert not changing.is_current(by_old)
    by_new = changing.seal("whsec_b2xk")
    assert changing.is_current(by_new)
    assert SecretBox("new key").open(by_new) == "whsec_b2xk"
    with pytest.raises(UnreadableSecret):
        old.open(by_new)
    assert not changing.is_current("whsec_b2xk")  # in plain


def test_the_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    key = key_from_file(path)
    assert len(key) >= 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_from_file(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no leftovers


def test_a_command_never_makes_a_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    with pytest.raises(NoSecretKey, match=str(path)):
        key_from_file(path, create=False)
    assert not path.exists()
    made = key_from_file(path)
    assert key_from_file(path, create=False) == made


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: key_from_file(path), range(32)))
    assert keys == {path.read_text().strip()}


def test_an_empty_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("\n")
    with pytest.raises(ConveyorError, match=str(path)):
        key_from_file(path)
