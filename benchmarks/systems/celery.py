"""Celery on RabbitMQ, one worker process (the solo pool), no result backend."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from celery import Celery

from benchmarks.apps_celery import (
    AMQP_URL_ENV,
    PROGRESS_ENV,
    QUEUE_ENV,
    amqp_url,
    make_app,
    read_progress,
)
from benchmarks.stamps import STAMP_ENV
from benchmarks.systems.base import Progress, System


class CeleryRabbitMQ(System):
    """Celery: a queue and exchange of their own per measurement on RabbitMQ
    (``BENCH_AMQP_URL``, else the local one), deleted after.

    Celery has no batch API: a batch is one ``send_task`` per job on one producer.
    """

    name: ClassVar[str] = "celery-rabbitmq"
    postgres: ClassVar[bool] = False
    batch_api = "send_task per job, one producer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = f"bench-{self.workdir.name}"
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        """The client app (once open)."""
        if self._app is None:
            raise RuntimeError("not open")
        return self._app

    @property
    def _progress_path(self) -> Path:
        return self.workdir / "celery-progress.txt"

    async def install(self) -> None:
        return  # the queue is declared by the first publish and by the worker

    async def open(self) -> None:
        self._app = make_app(self.queue)

    async def close(self) -> None:
        if self._app is None:
            return
        try:
            with self._app.connection_for_write() as conn:
                conn.default_channel.queue_delete(self.queue)
                conn.default_channel.exchange_delete(self.queue)  # Celery names it after the queue
        finally:
            self._app.close()
            self._app = None

    async def enqueue_noop(self) -> None:
        self.app.send_task("noop")

    async def enqueue_noops(self, count: int) -> None:
        with self.app.producer_or_acquire() as producer:
            for _ in range(count):
                self.app.send_task("noop", producer=producer)

    async def enqueue_stamp(self, seq: int) -> None:
        self.app.send_task("stamp", args=[seq])

    def worker_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.apps_celery",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            self.queue,
        ]

    def worker_env(self) -> dict[str, str]:
        return {
            AMQP_URL_ENV: amqp_url(),
            QUEUE_ENV: self.queue,
            PROGRESS_ENV: str(self._progress_path),
            STAMP_ENV: str(self.workdir / "stamps.txt"),
        }

    async def done_count(self) -> int:
        return read_progress(self._progress_path)[0]

    async def progress(self) -> Progress:
        done, first, last = read_progress(self._progress_path)
        return Progress(done=done, first_start=first, last_finish=last)
