"""The Celery worker the benchmark runs, on RabbitMQ:
``celery -A benchmarks.apps_celery worker --pool solo -Q QUEUE``.

One process (the ``solo`` pool; Celery still sets the prefetch to the number of
cores times 4, 8 on two cores), early
acknowledgement (Celery's default), persistent messages that the broker confirms
before a publish returns (``confirm_publish``: an enqueue is stored, as a committed
one is for the others), no result backend. The broker comes from ``BENCH_AMQP_URL``
(default: the local RabbitMQ as guest), the queue from ``BENCH_CELERY_QUEUE``, so
that each measurement has a queue (and exchange) of its own.

Celery keeps no record of finished tasks without a result backend, and a backend
would add its own cost to every task. So the no-op task tallies itself in memory,
and a thread writes the tally (``done first_start last_finish``) to the file named
by ``BENCH_PROGRESS_FILE`` every 50 ms, atomically: that is what the runner polls.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from celery import Celery

from benchmarks.stamps import record_start

AMQP_URL_ENV = "BENCH_AMQP_URL"
QUEUE_ENV = "BENCH_CELERY_QUEUE"
PROGRESS_ENV = "BENCH_PROGRESS_FILE"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
FLUSH_SECONDS = 0.05


def amqp_url() -> str:
    """The broker: ``BENCH_AMQP_URL``, else the local RabbitMQ."""
    return os.environ.get(AMQP_URL_ENV, DEFAULT_AMQP_URL)


def make_app(queue: str) -> Celery:
    """A Celery app on RabbitMQ whose tasks go to ``queue``."""
    celery = Celery("bench", broker=amqp_url())
    celery.conf.update(
        task_default_queue=queue,
        broker_transport_options={"confirm_publish": True},
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return celery


class Tally:
    """Finished no-op tasks, and the first start and last finish (epoch seconds)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.done = 0
        self.first_start: float | None = None
        self.last_finish: float | None = None
        self._flusher: threading.Thread | None = None

    def finished(self, started: float) -> None:
        """Count one task that started at ``started`` and has just finished."""
        if self.first_start is None:
            self.first_start = started
            self._start_flusher()
        self.last_finish = time.time()  # before the count: a flush never pairs a new
        self.done += 1  # count with an older finish

    def _start_flusher(self) -> None:
        if self.path is None:
            return
        self._flusher = threading.Thread(target=self._flush_forever, daemon=True)
        self._flusher.start()

    def _flush_forever(self) -> None:
        while True:
            self.write()
            time.sleep(FLUSH_SECONDS)

    def write(self) -> None:
        """Replace the progress file with the current tally."""
        if self.path is None:
            return
        line = f"{self.done} {self.first_start or 0:.6f} {self.last_finish or 0:.6f}\n"
        partial = self.path.with_suffix(".tmp")
        partial.write_text(line)
        partial.replace(self.path)


def read_progress(path: Path) -> tuple[int, float | None, float | None]:
    """``(done, first_start, last_finish)`` from a progress file (zeros before any)."""
    if not path.exists():
        return 0, None, None
    done, first, last = path.read_text().split()
    return int(done), float(first) or None, float(last) or None


_progress = os.environ.get(PROGRESS_ENV)
tally = Tally(Path(_progress) if _progress else None)
app = make_app(os.environ.get(QUEUE_ENV, "bench"))


@app.task(name="noop")
def noop() -> None:
    """Do nothing, and count it."""
    tally.finished(time.time())


@app.task(name="stamp")
def stamp(seq: int) -> None:
    """Record when this task started (see :mod:`benchmarks.stamps`)."""
    record_start(seq)
