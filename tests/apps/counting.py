"""A worker app for subprocess tests: each run of a job is appended to a log file.

``CONVEYOR_TEST_RUN_LOG`` names the file; each line is ``job_id attempt pid``.
Appends of one short line with O_APPEND are atomic, so two worker processes can
share the file.
"""

from __future__ import annotations

import os
import time

from conveyor import Conveyor, JobContext

app = Conveyor()


@app.task(name="count", max_attempts=5)
def count(n: int, ctx: JobContext, sleep: float = 0.002) -> int:
    """Record this run, then take a little time so kills land mid-job."""
    line = f"{ctx.job_id} {ctx.attempt} {os.getpid()}\n".encode()
    fd = os.open(os.environ["CONVEYOR_TEST_RUN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    time.sleep(sleep)
    return n
