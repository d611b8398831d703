"""Benchmarks: Conveyor on SQLite and PostgreSQL against pgqueuer and procrastinate.

Run with ``python -m benchmarks.run``; see ``docs/benchmarks.md``.
"""
