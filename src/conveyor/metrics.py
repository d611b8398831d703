"""Prometheus metrics of a server: HTTP latency, claim and run durations of the embedded
worker, and job counts read from the database at scrape time (so every node reports
the same truth, without multiprocess gauges)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from conveyor.store.accounts_protocol import AccountStore
from conveyor.store.protocol import Store


class Metrics:
    """The server's metrics, in a registry of its own; also the embedded worker's
    observer (claim and run durations)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_seconds = Histogram(
            "conveyor_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.claim_seconds = Histogram(
            "conveyor_claim_duration_seconds",
            "How long a claim took, by queue (embedded worker).",
            ["queue"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self.claimed_jobs = Counter(
            "conveyor_claimed_jobs",
            "Jobs claimed, by queue (embedded worker).",
            ["queue"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "conveyor_job_run_duration_seconds",
            "How long jobs ran, by task and outcome (embedded worker).",
            ["task", "outcome"],
            registry=self.registry,
            buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800),
        )
        self.jobs = Gauge(
            "conveyor_jobs",
            "Jobs by tenant, queue and state.",
            ["tenant", "queue", "state"],
            registry=self.registry,
        )

    def claimed(self, queue: str, count: int, seconds: float) -> None:
        """Record a claim (the worker observer interface)."""
        self.claim_seconds.labels(queue).observe(seconds)
        if count:
            self.claimed_jobs.labels(queue).inc(count)

    def ran(self, task: str, outcome: str, seconds: float) -> None:
        """Record a finished run (the worker observer interface)."""
        self.run_seconds.labels(task, outcome).observe(seconds)

    async def render(self, store: Store, accounts: AccountStore) -> bytes:
        """The text exposition, with job counts read now."""
        self.jobs.clear()
        for tenant in await accounts.list_tenants():
            counts = await store.count_jobs(tenant.id)
            for (queue, state), count in counts.items():
                self.jobs.labels(tenant.id, queue, str(state)).set(count)
        return generate_latest(self.registry)
