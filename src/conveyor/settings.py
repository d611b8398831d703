"""Server settings: one typed object from flags, ``CONVEYOR_*`` variables and a TOML file.

Precedence, highest first: command-line flags, environment variables, the TOML
file (``--config`` or ``CONVEYOR_CONFIG``), the defaults below. Every secret also
reads from a file named by ``CONVEYOR_<NAME>_FILE`` (for container secrets).
Invalid values stop the server at start with a message that names the setting.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from conveyor.domain.errors import InvalidInput
from conveyor.domain.hooks import parse_networks
from conveyor.net.policy import OutboundPolicy, split_entries
from conveyor.store import DEFAULT_DATABASE_URL
from conveyor.store.sealing import SecretBox, key_from_file

MIN_KEY_LENGTH = 16
GENERATED_KEY_FILE = "secret.key"
"""The key made in ``data_dir`` when no ``secret_key`` is set."""
_SECRETS = ("secret_key", "previous_secret_key", "admin_password", "amqp_url", "smtp_password")


class Settings(BaseSettings):
    """Everything ``conveyor serve`` can be told."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="forbid", toml_file=None)
    _box: SecretBox | None = PrivateAttr(default=None)

    database_url: str = DEFAULT_DATABASE_URL
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    """The address people open, if not http://host:port (behind a proxy)."""

    secret_key: SecretStr | None = None
    """Signs access tokens and seals the secrets kept in the database (webhook and
    hook secrets). Unset: tokens are signed by a key made once and kept, sealed, in the
    database, and secrets are sealed with a key made once in ``data_dir``."""
    previous_secret_key: SecretStr | None = None
    """The key being replaced: what it sealed still opens, and is sealed again with
    the current key when the server starts. Drop it once every node runs the new key."""
    data_dir: Path = Path("conveyor-data")
    """Where job artifacts are stored and, without ``secret_key``, the key that seals
    secrets (``secret.key``, mode 0600). Nodes on one database must share that key."""
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
    sign_in_failures_per_minute: int = Field(default=10, ge=0)
    """Failed sign-ins per minute from one address before it waits (0: no limit)."""
    sign_in_failures_burst: int = Field(default=10, ge=1)
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

    amqp_url: SecretStr | None = None
    """RabbitMQ address (``amqp://user:password@host:5672/vhost``); unset: no bridge."""
    amqp_events_exchange: str = Field(default="conveyor.events", min_length=1, max_length=255)
    """The topic exchange (durable) every event is published to."""
    amqp_dead_letter_exchange: str = Field(
        default="conveyor.dead-letter", min_length=1, max_length=255
    )
    """The fanout exchange (durable) refused messages are published to; the catch-all
    queue bound to it is named ``_`` + this (no tenant's queue prefix can match it)."""
    amqp_prefetch: int = Field(default=50, ge=1, le=65_535)
    """Unacknowledged messages one route's consumer holds at once."""
    amqp_egress: bool = True
    """Publish events to ``amqp_events_exchange`` (when ``amqp_url`` is set)."""
    amqp_interval: float = Field(default=2.0, gt=0, le=60)
    """Seconds between looks at the ingress routes and for new events to publish."""
    amqp_reconnect_max_seconds: float = Field(default=30.0, gt=0, le=3600)
    """The longest wait between reconnects to RabbitMQ."""

    hook_retention_days: int = Field(default=30, ge=1)
    """Days a request received by an incoming hook is kept."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Networks of reverse proxies whose ``X-Forwarded-For`` names the client (an
    incoming hook's sender; who signs in, for the failed sign-in limit):
    ``"10.0.0.0/8, 127.0.0.1"``. Empty: the connecting address is the client, so
    behind a proxy every client would share the proxy's limit."""

    smtp_host: str | None = None
    """The SMTP server that sends mail (unset: no mail is sent)."""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (upgrade the connection, port 587), ``tls`` (TLS from the start,
    port 465) or ``none`` (plain text: only to a relay on a trusted network)."""
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "conveyor@localhost"
    """The ``From`` address of every mail."""
    mail_interval: float = Field(default=1.0, gt=0, le=60)
    """Seconds between looks for new events to mail."""
    mail_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    """How long one mail may take to send before it counts as failed (and is retried)."""
    mail_concurrency: int = Field(default=4, ge=1, le=100)
    """Mails being sent at once."""
    mail_templates_dir: Path | None = None
    """A folder whose templates replace the built-in ones of the same name."""

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

    @field_validator("secret_key", "previous_secret_key", mode="before")
    @classmethod
    def _strong_key(cls, value: object) -> SecretStr | None:
        """A key long enough that guessing it from a copy of the database is hopeless,
        without the blanks around it; an empty one (a blank line in an environment
        file) counts as unset."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None:
            return None
        if not isinstance(text, str):
            raise ValueError("must be a string")
        if not text.strip():
            return None
        if len(text.strip()) < MIN_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_KEY_LENGTH} characters (a random one)")
        return SecretStr(text.strip())

    @field_validator("amqp_url")
    @classmethod
    def _amqp_address(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: str | list[str]) -> list[str]:
        """A list (TOML), or a comma-separated string or JSON list (environment)."""
        try:
            entries = split_entries(value)
            parse_networks(entries)
        except InvalidInput as exc:
            raise ValueError(exc.problem) from None
        return entries

    @field_validator("mail_from")
    @classmethod
    def _mail_address(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", value):
            raise ValueError("must be an email address (conveyor@example.com)")
        return value

    @field_validator("mail_templates_dir")
    @classmethod
    def _templates_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"no such folder: {value}")
        return value

    @model_validator(mode="after")
    def _smtp_login(self) -> Settings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together: give both or neither")
        return self

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

    def secret_box(self, *, create: bool = True) -> SecretBox:
        """What seals the secrets kept in the database: ``secret_key`` if set, else the
        key in ``data_dir``'s ``secret.key`` (made if missing and ``create``, else
        ``NoSecretKey``). One box per settings, so that a secret that does not open is
        logged once, however many parts of a server read it."""
        if self._box is None:
            self._box = self._new_box(create)
        return self._box

    def _new_box(self, create: bool) -> SecretBox:
        previous = [] if self.previous_secret_key is None else [self.previous_secret_key]
        previous_keys = [key.get_secret_value() for key in previous]
        if self.secret_key is not None:
            return SecretBox(self.secret_key.get_secret_value(), previous_keys)
        path = self.data_dir / GENERATED_KEY_FILE
        try:
            return SecretBox(key_from_file(path, create=create), previous_keys)
        except OSError as exc:
            raise InvalidInput("setting data_dir", f"cannot keep a key in {path}: {exc}") from None


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
        if not found[name]:  # a secret file mounted wrong must not mean "no secret"
            raise InvalidInput(f"setting {name}_file", f"{path} is empty")
    return found
