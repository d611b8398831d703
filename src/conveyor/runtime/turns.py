"""Which of its queues a worker claims from next, and in what order.

A worker serving several queues claims them in turns. Asking a queue that has just
come back short (it held fewer jobs than the worker asked for) is most often a round
trip to the database for nothing, so such a queue is *drained*: it is left out of
the turns until new work may have arrived (the store woke the worker, on a
notification or at the end of a poll) or ``recheck`` seconds have passed while other
queues kept the worker busy.

In each round the drained queues due for a look go first, while the worker still has
free slots to take what they hold, the one that last gave a job first (after a
wake-up, the queue that was notified is most often the one in use). The queues that
had jobs follow, in rotation so that none is favoured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class QueueTurns:
    """The claim order of a worker's queues (times are from a monotonic clock)."""

    queues: tuple[str, ...]
    recheck: float = 0.05
    """Seconds a drained queue is skipped while the worker is not woken."""
    _turn: int = 0
    _drained: dict[str, float] = field(default_factory=dict)
    _last_gave: dict[str, float] = field(default_factory=dict)
    _freed: dict[str, float] = field(default_factory=dict)
    _woken: float = -math.inf

    def order(self, now: float) -> list[str]:
        """The queues to claim from in this round, in order."""
        count = len(self.queues)
        start, self._turn = self._turn, (self._turn + 1) % count
        rotated = [self.queues[(start + i) % count] for i in range(count)]
        with_jobs = [q for q in rotated if q not in self._drained]
        due = [q for q in rotated if q in self._drained and self._due(q, now)]
        due.sort(key=lambda q: self._last_gave.get(q, -math.inf), reverse=True)
        return due + with_jobs

    def claimed(
        self, queue: str, asked: int, got: int, sent: float, now: float, urgent: bool
    ) -> None:
        """Record a claim of ``asked`` jobs, sent at ``sent``, that returned ``got``.

        A short urgent-only claim says nothing of the queue's other jobs, and a short
        claim sent before the queue was :meth:`freed` may have counted jobs that had
        finished meanwhile: neither drains the queue."""
        if got:
            self._last_gave[queue] = now
        if got >= asked:
            self._drained.pop(queue, None)
        elif not urgent and self._freed.get(queue, -math.inf) < sent:
            self._drained[queue] = now

    def freed(self, queue: str, now: float) -> None:
        """Jobs of ``queue`` finished and were written: if the queue has a concurrency
        limit, it has room again, so it takes its turn as a queue with jobs."""
        self._drained.pop(queue, None)
        self._freed[queue] = now

    def woken(self, now: float) -> None:
        """New work may have arrived anywhere: every drained queue is due again."""
        self._woken = now

    def _due(self, queue: str, now: float) -> bool:
        drained_at = self._drained[queue]
        return drained_at <= self._woken or now - drained_at >= self.recheck
