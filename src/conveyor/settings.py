"""Server settings: one typed object from flags, ``CONVEYOR_*`` variables and a TOML file.

Precedence, highest first: command-line flags, environment variables, the TOML
file (``--config`` or ``CONVEYOR_CONFIG``), the defaults below. Every secret also
reads from a file named by ``CONVEYOR_<NAME>_FILE`` (for container secrets).
Invalid values stop the server at start with a message that names the setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from conveyor.domain.errors import InvalidInput
from conveyor.net.policy import OutboundPolicy, split_entries
from conveyor.store import DEFAULT_DATABASE_URL

_SECRETS = ("secret_key", "admin_password")


class Settings(BaseSettings):
    """Everything ``conveyor serve`` can be told."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="forbid", toml_file=None)

    database_url: str = DEFAULT_DATABASE_URL
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    """The address people open, if not http://host:port (behind a proxy)."""

    secret_key: SecretStr | None = None
    """Signs access tokens. Unset: a key is made once and kept in the database."""
    access_token_minutes: float = Field(default=15, gt=0, le=24 * 60)
    refresh_token_days: float = Field(default=30, gt=0, le=365)

    admin_email: str = "admin@localhost"
    admin_password: SecretStr | None = None
    """The first admin's password. Unset: one is generated and printed on first start."""

    argon2_time_cost: int = Field(default=2, ge=1, le=20)
    argon2_memory_kib: int = Field(default=19_456, ge=8, le=4_194_304)
    """Argon2id cost (OWASP's minimum by default: 19 MiB, 2 passes)."""

    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=6_000, ge=0)
    """Requests per minute per API key, user or address (0: no limit)."""
    rate_limit_burst: int = Field(default=500, ge=1)
    audit_retention_days: int = Field(default=365, ge=1)
    rescue_interval: float = Field(default=5.0, gt=0)
    """Seconds between sweeps for jobs whose worker died."""
    scheduler: bool = True
    """Fire schedules from this server (one node leads at a time)."""
    scheduler_interval: float = Field(default=1.0, gt=0, le=60)
    """Longest rest of the scheduler: how soon it sees a schedule added on another
    node, and how often a follower asks for the lead."""
    misfire_grace_seconds: float = Field(default=60.0, ge=0)
    """A fire time this late still runs as on time; later ones follow the misfire policy."""

    live_poll_interval: float = Field(default=0.5, gt=0, le=60)
    """Seconds between reads of new events for live clients (WebSocket and SSE)."""
    live_keepalive_seconds: float = Field(default=15.0, gt=0, le=3600)
    """Seconds between keepalive messages on an idle live connection."""
    live_max_queued: int = Field(default=1_000, ge=1)
    """Events queued for one live client before it is cut as too slow."""

    webhooks: bool = True
    """Send webhook deliveries from this server (one node leads at a time)."""
    webhook_interval: float = Field(default=1.0, gt=0, le=60)
    """Seconds between looks for new events to send to webhook Subscriptions."""
    webhook_concurrency: int = Field(default=16, ge=1, le=1000)
    """Webhook deliveries in flight at once, in all."""
    webhook_per_subscription: int = Field(default=2, ge=1, le=100)
    """Webhook deliveries in flight at once to one Subscription."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """How long one delivery may take before it counts as failed."""
    webhook_disable_after: int = Field(default=10, ge=0)
    """Deliveries failed in a row (each after a day of retries) that disable a
    Subscription (0: never)."""

    worker: str | None = None
    """``MODULE:APP`` to run an embedded worker inside the server."""
    demo: bool = False
    """Run the demo tasks in an embedded worker."""
    worker_concurrency: int = Field(default=10, ge=1)
    http_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Networks, addresses and host names the ``http`` task may call although they are
    not public (loopback, private, link-local...): ``"10.0.0.0/8, hooks.internal"``."""
    shell_tasks: bool = False
    """Run the ``shell`` task and let owners create shell jobs (as the server's user)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("http_allow", mode="before")
    @classmethod
    def _allowlist(cls, value: str | list[str]) -> list[str]:
        """A list (TOML), or a comma-separated string or JSON list (environment)."""
        try:
            entries = split_entries(value)
            OutboundPolicy.from_entries(entries)
        except InvalidInput as exc:
            raise ValueError(exc.problem) from None
        return entries

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then environment, then the TOML file."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def url(self) -> str:
        """Where people reach this server."""
        return self.public_url or f"http://{self.host}:{self.port}"


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Settings from ``flags`` (``None`` values are ignored), the environment and a file.

    Raises ``InvalidInput`` naming the first bad setting.
    """
    config_file = config_file or _env_path("CONVEYOR_CONFIG")
    if config_file is not None and not config_file.is_file():
        raise InvalidInput("config", f"no such file: {config_file}")
    given = {name: value for name, value in flags.items() if value is not None}
    given.update(_secret_files(given))
    cls: type[Settings] = Settings
    if config_file is not None:
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})
        cls = type("FileSettings", (Settings,), {"model_config": config})
    try:
        return cls(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        raise InvalidInput(f"setting {name}", first["msg"]) from None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _secret_files(given: dict[str, Any]) -> dict[str, str]:
    """``CONVEYOR_<SECRET>_FILE`` contents for secrets not given as flags."""
    found = {}
    for name in _SECRETS:
        path = _env_path(f"CONVEYOR_{name.upper()}_FILE")
        if name in given or path is None:
            continue
        try:
            found[name] = path.read_text("utf-8").strip()
        except OSError as exc:
            raise InvalidInput(f"setting {name}_file", f"cannot read {path}: {exc}") from None
    return found
