"""Starting and stopping the servers under test: the real `frontdesk serve` and the ceiling app.

Every server runs in its own session (process group), is stopped by its own PID (SIGINT, the
graceful way uvicorn knows), and, if anything of its group is still alive after that, the
group is killed. Nothing is ever stopped by name: the host may run other Python servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server did not start or answer; the message carries the tail of its log."""


def free_port() -> int:
    # A fresh port per server: a port just released may still have sockets in TIME_WAIT.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def frontdesk_command(port: int, workers: int) -> list[str]:
    return [
        str(VENV_BIN / "frontdesk"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def ceiling_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        *("-m", "bench.ceiling"),
        *("--host", HOST, "--port", str(port), "--workers", str(workers)),
    ]


class Server:
    """One server process (and its workers), with its log in a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.port = int(command[command.index("--port") + 1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,  # so that `bench.ceiling` is importable by uvicorn
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for the fallback kill
            )
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode}\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} did not answer /healthz in {timeout:.0f} s\n{self.tail()}")

    def processes(self) -> list[psutil.Process]:
        """The server and its workers (uvicorn --workers N forks N children)."""
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"  ! {self.name} ignored SIGINT for {grace:.0f} s; killing its group")
        # Workers or a hung server may outlive SIGINT: kill whatever is left of its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    | " + line for line in text[-lines:])


@contextlib.contextmanager
def running(name: str, command: list[str], env: dict[str, str], log: Path) -> Iterator[Server]:
    server = Server(name, command, env, log)
    try:
        server.start()
        yield server
    finally:
        server.stop()
