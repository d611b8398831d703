"""The RabbitMQ bridge as ``conveyor serve`` runs it: the ingress consumer on every
node, the egress publisher on the node that leads, both wired from :class:`Settings`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from conveyor.amqp.connection import safe_address
from conveyor.amqp.consumer import IngressContext
from conveyor.amqp.egress import AmqpEgress, EgressTarget, egress_leadership
from conveyor.amqp.ingress import AmqpIngress, IngressTiming
from conveyor.settings import Settings
from conveyor.store.amqp_protocol import AmqpStore
from conveyor.store.protocol import Store

if TYPE_CHECKING:
    from conveyor.services.jobs import JobService


class AmqpBridge:
    """Ingress and (unless ``amqp_egress`` is off) egress. ``start()``, ``await stop()``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        amqp: AmqpStore,
        jobs_for: Callable[[str], JobService],
        clock: Callable[[], datetime],
    ) -> None:
        if settings.amqp_url is None:
            raise ValueError("the RabbitMQ bridge needs amqp_url")
        url = settings.amqp_url.get_secret_value()
        self.address = safe_address(url)
        context = IngressContext(
            amqp, jobs_for, clock, settings.amqp_dead_letter_exchange, settings.amqp_prefetch
        )
        timing = IngressTiming(settings.amqp_interval, settings.amqp_reconnect_max_seconds)
        self.ingress = AmqpIngress(url, context, timing)
        self.egress: AmqpEgress | None = None
        if settings.amqp_egress:
            self.egress = AmqpEgress(
                EgressTarget(url, settings.amqp_events_exchange),
                store,
                amqp,
                egress_leadership(settings.database_url),
                clock,
                settings.amqp_interval,
                settings.amqp_reconnect_max_seconds,
            )

    def __repr__(self) -> str:
        return f"AmqpBridge({self.address})"

    def start(self) -> None:
        """Start consuming and publishing in the background."""
        self.ingress.start()
        if self.egress is not None:
            self.egress.start()

    def routes_changed(self) -> None:
        """A route changed through this node: the consumer reads the routes now."""
        self.ingress.wake()

    async def stop(self) -> None:
        """Stop consuming (the messages in hand get ``grace`` seconds to finish), stop
        publishing (a batch waits for its confirms at most ``PUBLISH_TIMEOUT``), disconnect."""
        await self.ingress.stop()
        if self.egress is not None:
            await self.egress.stop()
