"""The load generator, always in its own process: wrk when installed, else bench/pyload.py.

Both send the same requests over the same number of keep-alive connections and report the same
figures (one JSON object), so the rest of the suite does not care which one ran. wrk is
preferred: it is what performance.md measured with, and it needs ~3x less CPU per request than
a Python client, CPU the server shares on a 2-core machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ROOT
from bench.workloads import Workload

LUA_SCRIPT = Path(__file__).with_name("requests.lua")


@dataclass(frozen=True)
class LoadSpec:
    url: str  # the server's base URL
    token: str
    workload: Workload
    mode: str  # "existing" or "new"
    channels: int  # how many existing keys (channels, call ids) the load is spread over
    prefix: str  # key prefix: EXISTING_PREFIX, or unique per run for new keys
    connections: int
    seconds: float


@dataclass(frozen=True)
class LoadResult:
    generator: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int  # connect, read, write errors and timeouts
    non2xx: int
    problems: int  # 2xx answers that still carry an error_code (a warning)
    new_tasks: int  # answers with is_new_task: true

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> bool:
        return self.socket_errors > 0 or self.non2xx > 0 or self.requests == 0

    @classmethod
    def from_json(cls, generator: str, data: dict[str, float]) -> LoadResult:
        return cls(
            generator=generator,
            requests=int(data["requests"]),
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            max_ms=data["max_us"] / 1000,
            socket_errors=int(sum(data[k] for k in ("connect", "read", "write", "timeout"))),
            non2xx=int(data["non2xx"]),
            problems=int(data["problems"]),
            new_tasks=int(data["new_tasks"]),
        )


def pick_generator(preference: str) -> str:
    """'wrk' or 'python'. 'auto' takes wrk when it is on PATH."""
    if preference == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("bench: --generator wrk, but wrk is not installed (apt-get install wrk)")
    if preference == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return preference


def _wrk_command(spec: LoadSpec) -> list[str]:
    head, tail = spec.workload.parts()
    return [
        "wrk",
        "-t1",  # one thread drives ~40k req/s (performance.md §1), far above these servers
        f"-c{spec.connections}",
        f"-d{max(1, round(spec.seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        spec.url + spec.workload.path,
        "--",
        spec.token,
        spec.mode,
        str(spec.channels),
        spec.prefix,
        head,
        tail,
        spec.workload.content_type,
        spec.workload.new_marker,
        spec.workload.problem_marker,
    ]


def _python_command(spec: LoadSpec) -> list[str]:
    head, tail = spec.workload.parts()
    workload = spec.workload
    config = {key: value for key, value in spec.__dict__.items() if key != "workload"} | {
        "path": workload.path,
        "head": head,
        "tail": tail,
        "content_type": workload.content_type,
        "new_marker": workload.new_marker,
        "problem_marker": workload.problem_marker,
    }
    return [sys.executable, "-m", "bench.pyload", json.dumps(config)]


def run_load(spec: LoadSpec, generator: str) -> LoadResult:
    command = _wrk_command(spec) if generator == "wrk" else _python_command(spec)
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=spec.seconds + 120,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return LoadResult.from_json(generator, json.loads(line.removeprefix("BENCH_JSON ")))
    raise RuntimeError(
        f"{generator} printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
