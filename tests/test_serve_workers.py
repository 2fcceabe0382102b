"""`frontdesk serve --workers N`: every worker listens on a socket of its own (SO_REUSEPORT),
so the kernel spreads connections over them; a worker that dies is replaced."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from factories import free_port, served, start_server, stop_server

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="only Linux balances SO_REUSEPORT sockets"
)


def _listeners(port: int) -> dict[int, str]:
    """pid -> socket inode of every worker listening on the port (from /proc): the
    supervisor, which keeps every worker's socket open too, is left out."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    owners = {}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (pid_dir / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for link in links:
            if link.startswith("socket:[") and link[8:-1] in inodes:
                owners[int(pid_dir.name)] = link[8:-1]
    parents = set()
    for pid in owners:
        try:
            parents.add(_parent_of(pid))
        except OSError:  # gone meanwhile
            continue
    return {pid: inode for pid, inode in owners.items() if pid not in parents}


def _serving_workers(port: int, log: Path) -> dict[int, str]:
    """The two workers' listeners, once both have said they serve (a worker killed before
    that is a failed start, which stops the server)."""

    def ready() -> dict[int, str] | None:
        now = _listeners(port)
        serving = {int(pid) for pid in re.findall(r"Worker (\d+) serving", log.read_text())}
        return now if len(now) == 2 and set(now) <= serving else None

    found: dict[int, str] = _wait_for(ready)
    return found


def _wait_for(condition, seconds: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


@dataclass(frozen=True)
class Served:
    base: str
    port: int
    #: pid -> listening socket of each worker
    workers: dict[int, str]


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """`serve --workers 2`, once both workers serve."""
    with served(database_url, tmp_path, "--workers", "2") as base:
        port = int(base.rsplit(":", 1)[1])
        yield Served(base, port, _serving_workers(port, tmp_path / "serve.log"))


def test_each_worker_listens_on_its_own_socket_and_a_dead_one_is_replaced(
    two_workers: Served,
) -> None:
    base, port, owners = two_workers.base, two_workers.port, two_workers.workers
    assert len(set(owners.values())) == 2  # two sockets, not one shared by two processes

    victim = next(iter(owners))
    os.kill(victim, signal.SIGKILL)
    replaced = _wait_for(
        lambda: (now := _listeners(port)) and len(now) == 2 and victim not in now and now
    )
    assert len(set(replaced.values())) == 2
    for _ in range(20):  # every connection is answered, whichever worker takes it
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_stopping_the_server_stops_every_worker(database_url: str, tmp_path: Path) -> None:
    process, base = start_server(database_url, tmp_path, "--workers", "2")
    try:
        workers = _serving_workers(int(base.rsplit(":", 1)[1]), tmp_path / "serve.log")
    finally:
        stop_server(process)  # SIGINT to the process group, as Ctrl-C in a terminal
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "zombie"


def test_workers_that_cannot_start_stop_the_server_instead_of_restarting() -> None:
    code = (
        "from frontdesk.cli.workers import serve_workers\n"
        "raise SystemExit(serve_workers({'app': 'no_such_module:app'}, '127.0.0.1', 0, 2))"
    )
    # in a process of its own: a supervisor that restarted them forever would never return
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"failed to start" in done.stderr


def test_workers_die_with_the_supervisor(two_workers: Served) -> None:
    """Killed with SIGKILL, the supervisor leaves no worker serving the port behind it."""
    base, port, workers = two_workers.base, two_workers.port, two_workers.workers
    supervisor = _parent_of(next(iter(workers)))
    os.kill(supervisor, signal.SIGKILL)
    _wait_for(lambda: not _listeners(port))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=5)


def test_sighup_replaces_every_worker_and_the_port_stays_served(two_workers: Served) -> None:
    base, port, old = two_workers.base, two_workers.port, two_workers.workers
    os.kill(_parent_of(next(iter(old))), signal.SIGHUP)
    answers = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answers.append(httpx.get(f"{base}/healthz", timeout=5).status_code)
        now = _listeners(port)
        if len(now) == 2 and not set(now) & set(old):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"workers not replaced: {old} -> {_listeners(port)}")
    assert set(answers) == {200}  # never refused while the workers changed


def test_connections_queued_on_a_retiring_worker_are_answered_after_sighup(
    two_workers: Served, tmp_path: Path
) -> None:
    """Connections wait in a worker's listening queue (here: the workers are stopped) when
    SIGHUP replaces it: the new worker takes them over, none is reset when the old one goes."""
    old = list(two_workers.workers)
    supervisor = _parent_of(old[0])
    for pid in old:
        os.kill(pid, signal.SIGSTOP)
    try:
        waiting = [socket.create_connection(("127.0.0.1", two_workers.port)) for _ in range(16)]
        for sock in waiting:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        os.kill(supervisor, signal.SIGHUP)
        log = tmp_path / "serve.log"
        _wait_for(lambda: len(re.findall(r"Worker \d+ serving", log.read_text())) == 4)
        for pid in old:  # the old workers end without taking another connection
            os.kill(pid, signal.SIGKILL)
        answers = []
        for sock in waiting:
            sock.settimeout(10)
            try:
                answers.append(sock.recv(64).split(b"\r\n", 1)[0])
            except OSError as exc:  # reset with the old socket
                answers.append(repr(exc).encode())
            finally:
                sock.close()
    finally:
        for pid in old:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert answers == [b"HTTP/1.1 200 OK"] * 16


def test_a_stopping_server_refuses_new_connections_at_once(two_workers: Served) -> None:
    """Once told to stop, the port closes while the workers finish their requests: a new
    client is refused at once (and tries elsewhere), not taken in and reset later."""
    supervisor = _parent_of(next(iter(two_workers.workers)))
    # requests still under way (their bodies unfinished) keep the workers finishing
    pending = []
    for _ in range(8):
        sock = socket.create_connection(("127.0.0.1", two_workers.port))
        sock.sendall(b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        pending.append(sock)
    try:
        time.sleep(0.5)  # taken by the workers
        os.kill(supervisor, signal.SIGTERM)
        time.sleep(1.0)  # the workers have closed their listeners and wait for the requests
        assert _listeners(two_workers.port) == {}
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", two_workers.port), timeout=5).close()
    finally:
        for sock in pending:
            sock.close()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


HUP_APP = """
import os, pathlib

if pathlib.Path(os.environ["BROKEN_MARK"]).exists():
    raise RuntimeError("the code was broken since the server started")


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def test_sighup_keeps_the_running_workers_when_the_new_ones_cannot_start(tmp_path: Path) -> None:
    (tmp_path / "hup_app.py").write_text(HUP_APP)
    port = free_port()
    code = (
        "from frontdesk.cli.workers import serve_workers\n"
        "options = {'app': 'hup_app:app', 'lifespan': 'off'}\n"
        f"raise SystemExit(serve_workers(options, '127.0.0.1', {port}, 2))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "BROKEN_MARK": str(tmp_path / "broken")}
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        supervisor = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        running = _serving_workers(port, log)
        (tmp_path / "broken").touch()
        supervisor.send_signal(signal.SIGHUP)
        _wait_for(lambda: "new workers failed to start" in log.read_text())
        assert _listeners(port) == running
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ok"
    finally:
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=30)
