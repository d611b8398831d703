"""The EventPoller: the one reader of new events for this process's live clients."""

from __future__ import annotations

from conveyor.loops.base import Loop
from conveyor.services.live import PAGE, EndReason, Fanout
from conveyor.store.protocol import Store


class EventPoller(Loop):
    """Follows ``store.list_events`` over all tenants (in commit order) and publishes
    each new Event to the :class:`~conveyor.services.live.Fanout`."""

    name = "live-events"

    def __init__(self, store: Store, fanout: Fanout, interval: float) -> None:
        super().__init__(interval)
        self.store = store
        self.fanout = fanout
        self.cursor = 0
        """The last event read: a position in the store's commit order."""

    async def catch_up(self) -> None:
        """Move the cursor past every event committed so far, publishing nothing."""
        self.cursor = await self.store.event_horizon(self.cursor)

    async def run_once(self) -> int:
        """Read every event committed since the cursor and publish each. With nobody
        subscribed there is no one to publish to: the cursor only moves to the horizon."""
        if not self.fanout.subscribers:
            horizon = await self.store.event_horizon(self.cursor)
            # A client that subscribed meanwhile may be owed events below the horizon.
            if not self.fanout.subscribers:
                self.cursor = horizon
                return 0
        return await self._read_new()

    async def stop(self) -> None:
        """Stop polling and end every subscription, so streams finish."""
        await super().stop()
        self.fanout.end_all(EndReason.SHUTDOWN)

    async def _read_new(self) -> int:
        handled = 0
        while True:
            events = await self.store.list_events(None, self.cursor, PAGE)
            for event in events:
                self.fanout.publish(event)
            if events:
                self.cursor = events[-1].id
            handled += len(events)
            if len(events) < PAGE:
                return handled
