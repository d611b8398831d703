"""The schema as SQLAlchemy Core tables, for the queries built at run time.

Migrations (``<dialect>/migrations/*.sql``) are the source of truth; a test
checks that these tables match what the migrations build on both databases.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("task", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("run_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("timeout", Float),
    Column("message_id", Text),
    Column("content_type", Text, nullable=False),
    Column("content_encoding", Text, nullable=False),
    Column("key", Text),
    Column("tags", JSON, nullable=False),
    Column("assignee", Text),
    Column("immediate", Boolean, nullable=False),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("worker_id", Text),
    Column("result", JSON),
    Column("error", JSON),
    Column("progress", Float),
    Column("progress_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("task_version", Integer),
    Column("created_by", Text),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("job_id", BigInteger),
    Column("type", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
