"""Settings: flags over environment over the TOML file, secrets from files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.settings import load_settings


def test_flags_beat_environment_beat_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text('port = 9001\nhost = "0.0.0.0"\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("CONVEYOR_PORT", "9002")
    settings = load_settings(config, port=9003)
    assert settings.port == 9003
    assert settings.host == "0.0.0.0"  # noqa: S104 - read from the file, not bound here
    assert settings.log_level == "DEBUG"
    assert load_settings(config).port == 9002


def test_the_config_file_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("rate_limit_per_minute = 0\n")
    monkeypatch.setenv("CONVEYOR_CONFIG", str(config))
    assert load_settings().rate_limit_per_minute == 0


def test_secrets_read_from_files_and_stay_out_of_reprs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "key"
    secret.write_text("a-very-secret-signing-key\n")
    monkeypatch.setenv("CONVEYOR_SECRET_KEY_FILE", str(secret))
    settings = load_settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "a-very-secret-signing-key"
    assert "a-very-secret" not in repr(settings)


def test_an_empty_key_is_unset_and_a_short_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "")
    monkeypatch.setenv("CONVEYOR_PREVIOUS_SECRET_KEY", " ")
    settings = load_settings(data_dir=tmp_path)
    assert settings.secret_key is None and settings.previous_secret_key is None
    assert settings.secret_box().open(settings.secret_box().seal("x")) == "x"
    assert (tmp_path / "secret.key").exists()
    for name in ("secret_key", "previous_secret_key"):
        with pytest.raises(InvalidInput) as caught:
            load_settings(None, **{name: "short"})
        assert caught.value.field == f"setting {name}"
        assert "16 characters" in caught.value.problem
        with pytest.raises(InvalidInput, match="string"):
            load_settings(None, **{name: 12345678901234567890})


def test_a_key_is_the_same_key_from_a_file_or_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "key"
    key.write_text("  a key long enough to use\n")
    monkeypatch.setenv("CONVEYOR_SECRET_KEY_FILE", str(key))
    sealed = load_settings().secret_box().seal("x")
    monkeypatch.delenv("CONVEYOR_SECRET_KEY_FILE")
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "a key long enough to use\n")
    assert load_settings().secret_box().open(sealed) == "x"
    key.write_text("\n")  # a secret file mounted wrong is an error, not "no key"
    monkeypatch.setenv("CONVEYOR_SECRET_KEY_FILE", str(key))
    with pytest.raises(InvalidInput, match="is empty") as caught:
        load_settings()
    assert caught.value.field == "setting secret_key_file"


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        ({"port": 70000}, "setting port"),
        ({"database_url": "mysql://x"}, "setting database_url"),
        ({"sqlite_synchronous": "SOMETIMES"}, "setting sqlite_synchronous"),
        ({"no_such_setting": 1}, "setting no_such_setting"),
    ],
)
def test_bad_values_name_the_setting(flags: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_settings(None, **flags)
    assert caught.value.field == field


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        load_settings(tmp_path / "absent.toml")


def test_one_settings_seal_with_one_box(tmp_path: Path) -> None:
    # The start-up check and the server share it: a secret that does not open is
    # logged once, not once by each.
    settings = load_settings(data_dir=tmp_path)
    assert settings.secret_box() is settings.secret_box(create=False)
    assert load_settings(data_dir=tmp_path).secret_box() is not settings.secret_box()
