"""Where the CPU went during a measured run: server, load generator, database, everything else.

The load generator, the server and PostgreSQL share the machine's cores (performance.md §1), so
"server CPU per request" is the portable figure, and "other" tells whether something outside
the benchmark (another user's tests, a backup) took CPU during the run and made it unreliable.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass

import psutil

from bench.servers import Server

#: PostgreSQL backends serving the benchmark's database carry its name in their title.
DB_MARK = "frontdesk_bench"


@dataclass(frozen=True)
class CpuUse:
    seconds: float  # wall time of the run
    server: float  # CPU seconds
    generator: float
    database: float
    other: float  # busy CPU of the whole machine minus the three above

    def per_request_us(self, cpu: float, requests: int) -> float:
        return cpu / requests * 1e6 if requests else 0.0

    @property
    def other_share(self) -> float:
        """Share of the machine's capacity used by processes outside the benchmark."""
        capacity = self.seconds * (psutil.cpu_count() or 1)
        return max(0.0, self.other) / capacity if capacity else 0.0


def _busy() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _children() -> float:
    # CPU of finished, waited-for child processes: the load generator once it has exited.
    times = os.times()
    return times.children_user + times.children_system


def _database() -> dict[int, float]:
    found = {}
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if DB_MARK in " ".join(proc.info["cmdline"] or ()):
                t = proc.cpu_times()
                found[proc.pid] = t.user + t.system
    return found


class CpuMeter:
    """Snapshot at start(); stop() answers the use since then (call it after the generator)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def start(self) -> None:
        self.wall = time.monotonic()
        self.busy = _busy()
        self.children = _children()
        self.server_cpu = self.server.cpu_seconds()
        self.db = _database()

    def stop(self) -> CpuUse:
        db_now = _database()
        database = sum(cpu - self.db.get(pid, 0.0) for pid, cpu in db_now.items())
        server = self.server.cpu_seconds() - self.server_cpu
        generator = _children() - self.children
        busy = _busy() - self.busy
        return CpuUse(
            seconds=time.monotonic() - self.wall,
            server=server,
            generator=generator,
            database=database,
            other=busy - server - generator - database,
        )


def speed_probe(path: str, seconds: float = 3.0) -> float:
    """Single-row SQLite commits per second (WAL, NORMAL), as in performance.md §3.4.

    That table measured 47,277/s on this kind of machine; a much lower figure here says the
    host is slower or busier than it was then, for every number of this run alike.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, a INT, b TEXT, c TEXT)")
        row = (123456, "jane.customer@example.com", "Hello support team, since yesterday")
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO probe (a, b, c) VALUES (?, ?, ?)", row)
            conn.execute("COMMIT")
            done += 1
        return done / (time.perf_counter() - started)
    finally:
        conn.close()
