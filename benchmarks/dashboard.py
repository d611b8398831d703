"""How long each dashboard page takes with 100,000 jobs in the database:
``python -m benchmarks.dashboard [--quick] [--only sqlite|postgres]``.

For each store, a real ``conveyor serve`` on a fresh database (the same command as the
API benchmark). The admin's tenant gets ``jobs`` jobs through the store, in batches of
1,000, over five queues and twelve tasks; 80% are then claimed and finished (one in
eight discarded with a traceback), so the database holds the rows a busy month leaves:
about three events per job, attempts, every state. All of it happens within minutes,
so the overview's last-hour chart counts every one of them (the heaviest case). Then
schedules, webhooks, incoming hooks with receipts, users and API keys are added
through the API.

Each page is fetched by a signed-in dashboard session (cookie) ``requests`` times
after two warm-up fetches; the time is from sending the request to the last byte of
the answer, measured by a client on the same machine, so it is an upper bound of the
server's time. Medians and p90 per page go to ``benchmarks/results/dashboard.json``
(``dashboard-quick.json`` with ``--quick``) and are printed as Markdown; see
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from benchmarks import report
from benchmarks.api_server import ADMIN_EMAIL, ADMIN_PASSWORD, RunningServer, api_server
from benchmarks.config import RESULTS_DIR
from benchmarks.machine import describe
from benchmarks.scenarios import percentile
from conveyor.domain.jobs import ErrorInfo, new_job
from conveyor.domain.outcomes import Completed, Discarded, Outcome, decide
from conveyor.domain.retry import Backoff
from conveyor.store import store_from_url
from conveyor.store.protocol import Store

STORES = ("sqlite", "postgres")
TENANT = "default"
QUEUES = ("default", "mail", "reports", "billing", "imports")
TASKS = tuple(f"{area}.{verb}" for area in ("mail", "report", "sync") for verb in "abcd")
BATCH = 1000
BACKOFF = Backoff(base=1, factor=2, cap=10, jitter=0)
TRACEBACK = 'Traceback (most recent call last):\n  File "tasks.py", line 12\nValueError: bad row\n'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BUDGET_MS = 200.0


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of one run."""

    jobs: int
    requests: int
    repeats: int
    pages: tuple[str, ...]
    """The names of the pages to measure (empty: all)."""


@dataclass(frozen=True, slots=True)
class Seeded:
    """Ids the page paths need."""

    job_id: int
    failed_job_id: int
    middle_job_id: int
    schedule_id: int
    webhook_id: int
    hook_id: int


async def _enqueue_all(store: Store, count: int) -> list[int]:
    ids: list[int] = []
    for start in range(0, count, BATCH):
        batch = [
            new_job(
                TASKS[n % len(TASKS)],
                {"row": n, "customer": f"c{n % 500}", "format": "csv"},
                queue=QUEUES[n % len(QUEUES)],
                key=f"order-{n}",
                tags=["vip"] if n % 10 == 0 else None,
                tenant_id=TENANT,
                created_by=ADMIN_EMAIL,
            )
            for n in range(start, min(count, start + BATCH))
        ]
        ids += [job.id for job in await store.enqueue(batch)]
    return ids


def _outcome(n: int) -> Outcome:
    if n % 8 == 0:
        return Discarded(ErrorInfo("ValueError", "bad row", TRACEBACK))
    return Completed({"rows": n})


async def _finish_some(store: Store, count: int) -> None:
    """Claim and finish ``count`` jobs across the queues, a batch at a time."""
    done = 0
    while done < count:
        queue = QUEUES[(done // BATCH) % len(QUEUES)]
        claimed = await store.claim(TENANT, queue, "bench-worker", min(BATCH, count - done), 300)
        if not claimed:
            break
        now = store.clock()
        finishes = [
            decide(
                _outcome(done + index),
                job_id=job.id,
                attempt=job.attempt,
                max_attempts=job.max_attempts,
                backoff=BACKOFF,
                now=now,
            )
            for index, job in enumerate(claimed)
        ]
        await store.finish(finishes)
        done += len(claimed)


async def seed_jobs(database_url: str, count: int) -> list[int]:
    """``count`` jobs, 80% of them finished; their ids."""
    store = store_from_url(database_url)
    await store.open()
    try:
        ids = await _enqueue_all(store, count)
        await _finish_some(store, count * 4 // 5)
        return ids
    finally:
        await store.close()


async def _api(client: httpx.AsyncClient, path: str, token: str, body: Any) -> Any:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()


async def seed_settings(server: RunningServer) -> tuple[int, int, int]:
    """Schedules, webhooks, incoming hooks with receipts, users and API keys; the ids
    of a schedule, a webhook and a hook."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60.0) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        schedules = [
            await _api(client, "/api/v1/schedules", token, _schedule(n)) for n in range(20)
        ]
        webhooks = [
            await _api(client, "/api/v1/webhooks", token, {"url": f"https://hooks.example/{n}"})
            for n in range(5)
        ]
        hooks = [
            await _api(client, "/api/v1/hooks", token, {"name": f"hook-{n}"}) for n in range(5)
        ]
        for n in range(50):
            sent = await client.post(f"/hooks/{hooks[0]['token']}", json={"n": n})
            sent.raise_for_status()
        for n in range(10):
            await _api(client, "/api/v1/users", token, {"email": f"user{n}@example.com"})
            key = {"name": f"key {n}", "scopes": ["jobs:read"]}
            await _api(client, "/api/v1/api-keys", token, key)
        return schedules[0]["id"], webhooks[0]["id"], hooks[0]["id"]


def _schedule(n: int) -> dict[str, Any]:
    return {
        "name": f"nightly-{n}",
        "task": TASKS[n % len(TASKS)],
        "cron": f"{n % 60} */{1 + n % 6} * * *",
        "timezone": "Europe/Lisbon",
    }


def pages(seeded: Seeded) -> dict[str, str]:
    """Every page measured, by a short name."""
    return {
        "overview": "/",
        "jobs": "/jobs",
        "jobs, state=discarded": "/jobs?state=discarded",
        "jobs, queue and task": f"/jobs?queue=mail&task={TASKS[1]}",
        "jobs, text search": "/jobs?q=c123",
        "jobs, older page": f"/jobs?cursor={seeded.middle_job_id}",
        "jobs, live rows": "/fragments/jobs",
        "job (completed)": f"/jobs/{seeded.job_id}",
        "job (discarded)": f"/jobs/{seeded.failed_job_id}",
        "bulk retry, confirm": "/jobs/bulk/retry?state=discarded",
        "queues": "/queues",
        "workers": "/workers",
        "schedules": "/schedules",
        "schedule": f"/schedules/{seeded.schedule_id}",
        "calendar, month": "/schedules/calendar",
        "calendar, week": "/schedules/calendar?view=week",
        "webhooks": "/webhooks",
        "webhook": f"/webhooks/{seeded.webhook_id}",
        "incoming hooks": "/incoming",
        "incoming hook": f"/incoming/{seeded.hook_id}",
        "users": "/users",
        "API keys": "/keys",
        "usage": "/usage",
        "tenants": "/tenants",
    }


async def sign_in(client: httpx.AsyncClient) -> None:
    """Sign in on the dashboard's form as the admin (the session cookie stays)."""
    form = await client.get("/login")
    found = CSRF.search(form.text)
    if found is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    data = {"csrf_token": found.group(1), "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = await client.post("/login", data=data, headers={"Origin": str(client.base_url)})
    if response.status_code != 303:
        raise RuntimeError(f"sign-in failed: {response.status_code}")


async def time_page(client: httpx.AsyncClient, path: str, requests: int) -> list[float]:
    """Milliseconds of ``requests`` fetches of ``path`` (after two warm-up fetches)."""
    for _ in range(2):
        warm = await client.get(path)
        if warm.status_code != 200:
            raise RuntimeError(f"{path} answered {warm.status_code}")
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    return times


async def run_once(store: str, plan: Plan) -> dict[str, list[float]]:
    """One fresh server of ``store``, seeded; every page's times."""
    async with api_server(store) as server:
        started = time.perf_counter()
        ids = await seed_jobs(server.database_url, plan.jobs)
        schedule_id, webhook_id, hook_id = await seed_settings(server)
        print(f"  seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        seeded = Seeded(ids[1], ids[0], ids[len(ids) // 2], schedule_id, webhook_id, hook_id)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60.0) as client:
            await sign_in(client)
            return {
                name: await time_page(client, path, plan.requests)
                for name, path in pages(seeded).items()
                if not plan.pages or name in plan.pages
            }


def _markdown(summary: dict[str, dict[str, dict[str, float]]], plan: Plan) -> str:
    names = list(next(iter(summary.values())))
    stores = list(summary)
    head = " | ".join(f"{s} median / p90 (ms)" for s in stores)
    lines = [
        f"{plan.jobs:,} jobs; {plan.requests} fetches per page, medians of {plan.repeats} runs.",
        "",
        f"| Page | {head} |",
        "|---|" + "---:|" * len(stores),
    ]
    for name in names:
        cells = " | ".join(
            f"{summary[s][name]['median_ms']:.1f} / {summary[s][name]['p90_ms']:.1f}"
            for s in stores
        )
        lines.append(f"| {name} | {cells} |")
    worst = max(summary[s][n]["median_ms"] for s in stores for n in names)
    lines += ["", f"Slowest median: {worst:.1f} ms (budget {BUDGET_MS:.0f} ms)."]
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> None:
    """Run every store ``repeats`` times; write the medians and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 jobs, one repetition")
    parser.add_argument("--only", choices=STORES)
    parser.add_argument("--jobs", type=int, help="how many jobs (default 100,000; quick 10,000)")
    parser.add_argument("--page", action="append", help="measure only pages named so (repeat)")
    args = parser.parse_args(argv)
    plan = Plan(10_000, 10, 1, ()) if args.quick else Plan(100_000, 20, 3, ())
    plan = replace(plan, jobs=args.jobs or plan.jobs, pages=tuple(args.page or ()))
    runs: dict[str, dict[str, list[list[float]]]] = {}
    for repeat in range(plan.repeats):
        for store in [args.only] if args.only else STORES:
            print(f"run {repeat + 1}/{plan.repeats}: {store}", file=sys.stderr)
            for name, times in (await run_once(store, plan)).items():
                runs.setdefault(store, {}).setdefault(name, []).append(times)
    summary = {
        store: {
            name: {
                "median_ms": statistics.median(statistics.median(t) for t in every),
                "p90_ms": statistics.median(percentile(t, 0.9) for t in every),
            }
            for name, every in by_page.items()
        }
        for store, by_page in runs.items()
    }
    result = {"plan": asdict(plan), "machine": await describe(), "summary": summary}
    report.write_json(result, RESULTS_DIR / f"dashboard{'-quick' if args.quick else ''}.json")
    print(_markdown(summary, plan))


if __name__ == "__main__":
    asyncio.run(main())
