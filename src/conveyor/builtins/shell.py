"""The built-in ``shell`` task: run one command per job (off unless the operator enables it).

Payload: ``command`` (a string run with ``/bin/sh -c``, or an argv list run
directly), ``cwd``, ``env`` (added to a minimal environment: ``PATH``, ``LANG``,
``HOME``; nothing else of the worker's environment is passed on) and ``timeout``
(seconds, default 60). The command runs in a process group of its own; when it
times out, or the job is cancelled, the whole group is killed, and so is anything
it left running when it exits. The result is ``{exit_code, stdout, stderr,
stdout_truncated, stderr_truncated}`` with the first 64 KiB of each stream. A
non-zero exit fails the attempt with the exit code and the end of stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from dataclasses import dataclass
from typing import Any

from conveyor.builtins.catalog import SHELL_TASK
from conveyor.builtins.payload import Payload, only_fields, parsed, seconds, string_map, text
from conveyor.domain.errors import InvalidInput

FIELDS = ("command", "cwd", "env", "timeout")
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 24 * 3600.0
MAX_OUTPUT = 64 * 1024
TAIL_BYTES = 2048
"""How much of the end of stderr is kept for the error message."""
PIPE_GRACE = 2.0
"""Seconds to wait for the output pipes to close once the command has ended."""
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHUNK = 16 * 1024


class ShellFailed(Exception):
    """The command did not succeed: it could not start, or exited with a non-zero code."""


class ShellTimeout(TimeoutError):
    """The command ran past its timeout; its process group was killed."""


@dataclass(frozen=True, slots=True)
class ShellCommand:
    """A validated ``shell`` payload."""

    argv: tuple[str, ...]
    cwd: str | None
    env: dict[str, str]
    timeout: float


def parse_command(payload: Payload) -> ShellCommand:
    """The command a ``shell`` payload describes; ``InvalidInput`` names a bad field."""
    only_fields(payload, FIELDS)
    extra = string_map(payload, "env", line_breaks=True)
    for name in extra:
        if not _ENV_NAME.match(name):
            raise InvalidInput(f"env.{name}", "must be letters, digits and '_'")
    env = {"PATH": BASE_PATH, "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/"), **extra}
    return ShellCommand(
        argv=_argv(payload.get("command")),
        cwd=text(payload, "cwd"),
        env=env,
        timeout=seconds(payload, "timeout", DEFAULT_TIMEOUT, MAX_TIMEOUT),
    )


def _argv(command: Any) -> tuple[str, ...]:
    if isinstance(command, str) and command.strip():
        argv: list[Any] = ["/bin/sh", "-c", command]
    elif isinstance(command, list) and command:
        argv = command
    else:
        raise InvalidInput("command", "is required: a string for /bin/sh -c, or an argv list")
    if not all(isinstance(arg, str) and "\x00" not in arg for arg in argv):
        raise InvalidInput("command", "must hold only strings without NUL characters")
    return tuple(argv)


class _Capture:
    """One output stream: its first ``MAX_OUTPUT`` bytes and its last ``TAIL_BYTES``."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = b""
        self.size = 0

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        """Read the stream to its end, keeping what fits (the rest is read and dropped,
        so a chatty command never blocks on a full pipe)."""
        while stream is not None and (chunk := await stream.read(_CHUNK)):
            self.size += len(chunk)
            self.head += chunk[: MAX_OUTPUT - len(self.head)]
            self.tail = (self.tail + chunk)[-TAIL_BYTES:]

    @property
    def truncated(self) -> bool:
        """More was written than kept."""
        return self.size > MAX_OUTPUT

    def text(self) -> str:
        """The kept output as text (bad UTF-8 becomes U+FFFD)."""
        return self.head.decode("utf-8", errors="replace")

    def ending(self, limit: int = 500) -> str:
        """The last ``limit`` characters, for an error message."""
        return self.tail.decode("utf-8", errors="replace").strip()[-limit:]


async def run_shell(**payload: Any) -> dict[str, Any]:
    """Run the command the payload describes; return its exit code and output."""
    command = parsed(SHELL_TASK, parse_command, payload)
    code, out, err = await _run(command)
    if code != 0:
        raise ShellFailed(_failure(code, err))
    return {
        "exit_code": code,
        "stdout": out.text(),
        "stderr": err.text(),
        "stdout_truncated": out.truncated,
        "stderr_truncated": err.truncated,
    }


def _failure(code: int, err: _Capture) -> str:
    if code < 0:
        what = f"was killed by signal {signal.Signals(-code).name}"
    else:
        what = f"exited with code {code}"
    ending = err.ending()
    return f"the command {what}: {ending}" if ending else f"the command {what} (no stderr)"


async def _run(command: ShellCommand) -> tuple[int, _Capture, _Capture]:
    """Run to the end or the timeout; the process group never outlives this call."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=command.cwd,
            env=command.env,
            start_new_session=True,
        )
    except OSError as exc:
        raise ShellFailed(f"could not start {command.argv[0]!r}: {exc}") from None
    out, err = _Capture(), _Capture()
    reading = asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
    try:
        async with asyncio.timeout(command.timeout):
            code = await process.wait()
    except TimeoutError:
        raise ShellTimeout(
            f"the command ran longer than {command.timeout:g} s; its process group was killed"
        ) from None
    finally:
        _kill_group(process.pid)
        await process.wait()
        await _settle(reading)
    return code, out, err


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in the group (it may be gone already)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _settle(reading: asyncio.Future[Any]) -> None:
    """Let the readers reach the end of the pipes; give up on a pipe still held open
    (by a process that left the group) after ``PIPE_GRACE`` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(PIPE_GRACE):
            await asyncio.shield(reading)
    if not reading.done():
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
