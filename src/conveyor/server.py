"""What ``conveyor serve`` runs, wired once from :class:`Settings`: the store, the
services, the background loops and (optionally) an embedded worker.

The web layer only asks this object for services; nothing here imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from conveyor.amqp.bridge import AmqpBridge
from conveyor.amqp.routes import AmqpRouteService, reserved_queues
from conveyor.app import Conveyor
from conveyor.builtins.catalog import may_run_shell
from conveyor.domain.accounts import Principal
from conveyor.domain.hooks import parse_networks
from conveyor.domain.jobs import utcnow
from conveyor.domain.ratelimit import TokenBuckets
from conveyor.loops.auditor import AuditFlusher
from conveyor.loops.base import Loop
from conveyor.loops.hook_pruner import ReceiptPruner
from conveyor.loops.live_events import EventPoller
from conveyor.loops.mailer import Mailer, MailerLimits
from conveyor.loops.notifier import Notifier, NotifierLimits
from conveyor.loops.pruner import Pruner
from conveyor.loops.rescuer import Rescuer
from conveyor.loops.scheduler import Scheduler
from conveyor.mail.rendering import Renderer
from conveyor.mail.smtp import SmtpTransport, smtp_config
from conveyor.metrics import Metrics
from conveyor.net.policy import OutboundPolicy
from conveyor.net.webhook_sender import HttpSender
from conveyor.runtime.worker import Worker
from conveyor.services.accounts import AccountService
from conveyor.services.audit import AuditLog
from conveyor.services.auth import Authenticator, Passwords, TokenSigner
from conveyor.services.hooks import HookReceiver, HookService
from conveyor.services.jobs import JobService
from conveyor.services.live import Fanout
from conveyor.services.mail import MailService
from conveyor.services.schedules import ScheduleService
from conveyor.services.tasks import TaskCatalog, TaskService
from conveyor.services.webhooks import WebhookService
from conveyor.settings import Settings
from conveyor.store import (
    accounts_for,
    amqp_for,
    hooks_for,
    mail_for,
    schedules_for,
    store_from_url,
    tasks_for,
    webhooks_for,
)
from conveyor.store.accounts_protocol import AccountStore
from conveyor.store.hooks_protocol import HookStore
from conveyor.store.leadership import leadership_for
from conveyor.store.mail_protocol import MailStore
from conveyor.store.protocol import Store
from conveyor.store.schedules_protocol import ScheduleStore
from conveyor.store.webhooks_protocol import WebhookStore

log = logging.getLogger("conveyor.server")

AUDIT_PRUNE_INTERVAL = 3600.0


@dataclass(slots=True)
class FirstLogin:
    """The admin account made on a new server, shown once at start."""

    email: str
    password: str


@dataclass
class Server:
    """The running parts of a Conveyor server. ``await start()``, then ``await stop()``."""

    settings: Settings
    worker_app: Conveyor | None = None
    store: Store = field(init=False)
    accounts_store: AccountStore = field(init=False)
    auth: Authenticator = field(init=False)
    accounts: AccountService = field(init=False)
    audit: AuditLog = field(init=False)
    task_catalog: TaskCatalog = field(init=False)
    schedule_store: ScheduleStore = field(init=False)
    scheduler: Scheduler | None = field(init=False, default=None)
    webhook_store: WebhookStore = field(init=False)
    hook_store: HookStore = field(init=False)
    receiver: HookReceiver = field(init=False)
    """Receives requests at incoming hooks' URLs (built once, at start)."""
    notifier: Notifier | None = field(init=False, default=None)
    mail_store: MailStore = field(init=False)
    mailer: Mailer | None = field(init=False, default=None)
    amqp: AmqpBridge | None = field(init=False, default=None)
    live: Fanout = field(init=False)
    metrics: Metrics = field(init=False, default_factory=Metrics)
    first_login: FirstLogin | None = field(init=False, default=None)
    started: bool = field(init=False, default=False)
    _loops: list[Loop] = field(init=False, default_factory=list)
    _worker_stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _worker_task: asyncio.Task[Worker] | None = field(init=False, default=None)

    async def start(self) -> None:
        """Open the store (refusing an old schema), then start the loops and the worker."""
        settings = self.settings
        self.store = store_from_url(
            settings.database_url, sqlite_synchronous=settings.sqlite_synchronous, create=False
        )
        await self.store.open()
        try:
            await self.store.check_schema()
            await self._wire()
        except BaseException:
            await self.store.close()
            raise
        self._loops = [
            Rescuer(self.store, settings.rescue_interval),
            AuditFlusher(self.audit),
            Pruner(
                self.audit,
                timedelta(days=settings.audit_retention_days),
                AUDIT_PRUNE_INTERVAL,
            ),
        ]
        self._loops.append(
            ReceiptPruner(
                self.hook_store,
                timedelta(days=settings.hook_retention_days),
                self.now,
                self.receiver.enqueue_lost,
            )
        )
        self.live = Fanout(settings.live_max_queued)
        poller = EventPoller(self.store, self.live, settings.live_poll_interval)
        await poller.catch_up()
        self._loops.append(poller)
        if settings.scheduler:
            self.scheduler = Scheduler(
                self.schedule_store,
                self._system_jobs,
                leadership_for(settings.database_url),
                self.now,
                settings.scheduler_interval,
                timedelta(seconds=settings.misfire_grace_seconds),
            )
            self._loops.append(self.scheduler)
        if settings.webhooks:
            self.notifier = self._notifier()
            self._loops.append(self.notifier)
        if settings.smtp_host:
            self.mailer = self._mailer()
            self._loops.append(self.mailer)
        for loop in self._loops:
            loop.start()
        self.worker_app = self._embedded_app()
        self._start_worker(self.worker_app)
        if settings.amqp_url is not None:
            self.amqp = AmqpBridge(
                settings, self.store, amqp_for(self.store), self._system_jobs, self.now
            )
            self.amqp.start()
        self.started = True

    async def stop(self) -> None:
        """Drain the embedded worker, stop the loops, close the store."""
        if self.amqp is not None:
            await self.amqp.stop()
        self._worker_stop.set()
        if self._worker_task is not None:
            with contextlib.suppress(Exception):
                await self._worker_task
        for loop in self._loops:
            await loop.stop()
        try:
            await self.audit.flush()
        finally:
            await self.store.close()
        self.started = False

    def now(self) -> datetime:
        """The store's clock (tests replace it to move time)."""
        return self.store.clock()

    def jobs_for(self, principal: Principal) -> JobService:
        """The job use cases as ``principal`` may use them."""
        tasks = self.worker_app.registry.settings if self.worker_app is not None else None
        service = JobService(
            self.store,
            principal.tenant_id,
            assigned_to=principal.email if principal.assigned_only else None,
            catalog=self.task_catalog,
            shell_tasks=self.settings.shell_tasks,
            may_run_shell=may_run_shell(principal),
            created_by=principal.email,
        )
        if tasks is not None:
            service.tasks = tasks
        return service

    def schedules_for(self, principal: Principal) -> ScheduleService:
        """The schedule use cases as ``principal`` may use them."""
        return ScheduleService(
            self.schedule_store,
            principal,
            self.now,
            self._schedules_changed,
            shell_tasks=self.settings.shell_tasks,
        )

    def webhooks_for(self, principal: Principal) -> WebhookService:
        """The webhook use cases as ``principal`` may use them."""
        return WebhookService(
            self.webhook_store,
            principal,
            self.now,
            self._webhooks_changed,
            self._webhook_sender() if self.settings.webhooks else None,
            self.settings.webhook_timeout_seconds,
        )

    def _webhook_sender(self) -> HttpSender:
        return HttpSender(OutboundPolicy.from_entries(self.settings.http_allow))

    def amqp_routes_for(self, principal: Principal) -> AmqpRouteService:
        """The RabbitMQ route use cases as ``principal`` may use them."""
        on_change = self.amqp.routes_changed if self.amqp is not None else None
        reserved = reserved_queues(
            self.settings.amqp_dead_letter_exchange, self.settings.amqp_events_exchange
        )
        return AmqpRouteService(
            amqp_for(self.store),
            principal,
            self.now,
            on_change,
            reserved,
            bridge_running=self.amqp is not None,
        )

    def hooks_for(self, principal: Principal) -> HookService:
        """The incoming hook use cases as ``principal`` may use them."""
        return HookService(self.hook_store, principal, self.now, self.jobs_for(principal))

    def hook_receiver(self) -> HookReceiver:
        """Receives requests at incoming hooks' URLs (enqueueing as the server does)."""
        return self.receiver

    def mail_for(self, principal: Principal) -> MailService:
        """The mail use cases as ``principal`` may use them."""
        return MailService(self.mail_store, self.store, principal, self.now, self._mail_changed)

    def _mail_changed(self) -> None:
        if self.mailer is not None:
            self.mailer.wake()

    def _mailer(self) -> Mailer:
        settings = self.settings
        return Mailer(
            self.store,
            self.mail_store,
            leadership_for(settings.database_url, "mailer"),
            SmtpTransport(smtp_config(settings)),
            Renderer(settings.url, settings.mail_templates_dir),
            self.now,
            settings.mail_interval,
            MailerLimits(settings.mail_concurrency, settings.mail_timeout_seconds),
        )

    def _webhooks_changed(self) -> None:
        if self.notifier is not None:
            self.notifier.wake()

    def _notifier(self) -> Notifier:
        settings = self.settings
        limits = NotifierLimits(
            concurrency=settings.webhook_concurrency,
            per_webhook=settings.webhook_per_subscription,
            timeout=settings.webhook_timeout_seconds,
            disable_after=settings.webhook_disable_after,
        )
        return Notifier(
            self.store,
            self.webhook_store,
            leadership_for(settings.database_url, "notifier"),
            HttpSender(OutboundPolicy.from_entries(settings.http_allow), keep_alive=True),
            self.now,
            settings.webhook_interval,
            limits,
        )

    def _schedules_changed(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    def _system_jobs(self, tenant_id: str, created_by: str | None = None) -> JobService:
        """A tenant's job service as the server itself uses it (firing schedules, taking
        RabbitMQ messages), creating jobs as ``created_by``."""
        service = JobService(
            self.store,
            tenant_id,
            catalog=self.task_catalog,
            shell_tasks=self.settings.shell_tasks,
            created_by=created_by,
        )
        if self.worker_app is not None:
            service.tasks = self.worker_app.registry.settings
        return service

    def tasks_for(self, principal: Principal) -> TaskService:
        """The task settings use cases as ``principal`` may use them."""
        service = TaskService(self.task_catalog, principal, self.now)
        if self.worker_app is not None:
            service.declared = self.worker_app.registry.settings
        return service

    async def _wire(self) -> None:
        settings = self.settings
        box = settings.secret_box()
        self.accounts_store = accounts_for(self.store, box)
        self.webhook_store = webhooks_for(self.store, box)
        self.hook_store = hooks_for(self.store, box)
        # Taken over before the secrets are sealed again: one node changes the key.
        await self.accounts_store.check_key(self.now(), take_over=True)
        await self._seal_secrets()
        passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib)
        signer = TokenSigner(
            await self._signing_keys(), timedelta(minutes=settings.access_token_minutes)
        )
        self.auth = Authenticator(
            self.accounts_store,
            passwords,
            signer,
            timedelta(days=settings.refresh_token_days),
            self.now,
            TokenBuckets(settings.sign_in_failures_per_minute, settings.sign_in_failures_burst),
        )
        self.accounts = AccountService(
            self.accounts_store, passwords, self.now, on_change=self.auth.forget
        )
        self.audit = AuditLog(self.accounts_store, self.now)
        self.task_catalog = TaskCatalog(tasks_for(self.store))
        self.schedule_store = schedules_for(self.store)
        self.mail_store = mail_for(self.store)
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        """Proxies whose ``X-Forwarded-For`` names the client."""
        self.receiver = HookReceiver(
            self.hook_store, self._system_jobs, self.now, self.trusted_proxies
        )
        admin_password = settings.admin_password
        made = await self.accounts.bootstrap_admin(
            settings.admin_email, admin_password.get_secret_value() if admin_password else None
        )
        if made is not None:
            self.first_login = FirstLogin(*made)

    async def _seal_secrets(self) -> None:
        """Seal with the current key the secrets kept in plain or by the previous key."""
        sealed = 0
        for store in (self.accounts_store, self.webhook_store, self.hook_store):
            sealed += await store.seal_secrets()
        if sealed:
            log.info("sealed %d secrets kept in plain or by the previous key", sealed)

    async def _signing_keys(self) -> list[tuple[str, str]]:
        """The configured key first; else the keys kept in the database (made once)."""
        if self.settings.secret_key is not None:
            return [("config", self.settings.secret_key.get_secret_value())]
        stored = await self.accounts_store.signing_keys()
        if not stored:
            await self.accounts_store.add_signing_key(
                secrets.token_hex(8), secrets.token_urlsafe(48), utcnow()
            )
            stored = await self.accounts_store.signing_keys()
        return [(kid, secret) for kid, secret, _ in stored]

    def _embedded_app(self) -> Conveyor:
        """The ``--worker`` app with the built-in settings applied; without one, an app
        of the built-in tasks alone. Its worker claims only their own queues (``http``,
        ``shell``), never jobs of tasks it does not know (docs/builtin-tasks.md)."""
        settings = self.settings
        if self.worker_app is not None:
            self.worker_app.use_server_settings(
                http_allow=settings.http_allow, shell_tasks=settings.shell_tasks
            )
            return self.worker_app
        return Conveyor(
            settings.database_url,
            data_dir=settings.data_dir,
            sqlite_synchronous=settings.sqlite_synchronous,
            shell_tasks=settings.shell_tasks,
            http_allow=settings.http_allow,
        )

    def _start_worker(self, app: Conveyor) -> None:
        app.aio.use_store(self.store)
        worker_settings = app.worker_settings(concurrency=self.settings.worker_concurrency)
        self._worker_task = asyncio.create_task(
            app.aio.run_worker(worker_settings, self._worker_stop, self.metrics),
            name="conveyor-worker",
        )
