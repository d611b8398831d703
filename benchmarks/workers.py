"""Worker processes: started with a log file, stopped with SIGTERM (then SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from benchmarks.config import ROOT

BIN = Path(sys.executable).parent


class WorkerDiedError(RuntimeError):
    """The worker process exited on its own; the message holds its log's tail."""


class WorkerProcess:
    """One worker process of the system under test."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id (once started)."""
        if self._proc is None:
            raise RuntimeError("the worker is not started")
        return self._proc.pid

    def start(self) -> None:
        """Start the process in its own session, output to the log file."""
        # A PYTHONPATH given to the run stays first (an A/B run can point the worker at
        # another copy of the sources); the repository root follows for ``benchmarks``.
        paths = [os.environ.get("PYTHONPATH", ""), str(ROOT)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **self.env}
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        """Raise ``WorkerDiedError`` if the process has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise WorkerDiedError(
                f"{self.command[0]} exited with {self._proc.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, then SIGKILL if it is still there."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the worker's output."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
