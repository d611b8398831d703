"""PostgreSQL's claims return a job's columns in the order of Job's fields: the
worker reads each claimed row by position (rows.job_from_values)."""

from __future__ import annotations

import re

import pytest

from conveyor.store.queries import load_queries
from conveyor.store.rows import JOB_FIELDS


@pytest.mark.parametrize("name", ["claim_jobs", "claim_urgent_jobs"])
def test_a_claim_returns_the_columns_of_job_in_field_order(name: str) -> None:
    sql = load_queries("postgres")[name]
    returning = re.search(r"RETURNING (.*?)\n\)", sql, re.DOTALL)
    assert returning is not None
    columns = [c.strip().removeprefix("jobs.") for c in returning.group(1).split(",")]
    assert tuple(columns) == JOB_FIELDS
