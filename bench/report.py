"""Medians, targets, the closing `bench ...` lines and bench/RESULTS.md.

Each figure is the median over the repeats; a ratio is app median / ceiling median. The upload
RSS growth is the largest seen in any repeat: it is a bound, not a typical value.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.scenarios import Run
from bench.upload import UploadRun

# The targets.
MIN_RATIO = 0.40
MAX_P99_MS = 50.0
MIN_UPLOAD_RATIO = 0.50
MAX_RSS_GROWTH_MB = 30.0


@dataclass(frozen=True)
class Row:
    scenario: str
    engine: str
    app: list[Run]
    ceiling: list[Run]

    def _median(self, runs: list[Run], attr: str) -> float:
        return statistics.median(getattr(run.result, attr) for run in runs) if runs else 0.0

    @property
    def rps(self) -> float:
        return self._median(self.app, "rps")

    @property
    def ceiling_rps(self) -> float:
        return self._median(self.ceiling, "rps")

    @property
    def ratio(self) -> float:
        return self.rps / self.ceiling_rps if self.ceiling_rps else 0.0

    @property
    def valid(self) -> bool:
        return all(not run.result.failed for run in self.app + self.ceiling)

    def verdict(self) -> str:
        if not self.valid:
            return "INVALID (errors)"
        misses = []
        if self.ratio < MIN_RATIO:
            misses.append(f"ratio < {MIN_RATIO}")
        if self._median(self.app, "p99_ms") > MAX_P99_MS:
            misses.append(f"p99 > {MAX_P99_MS:.0f} ms")
        return "MISSED: " + ", ".join(misses) if misses else "met"

    def line(self) -> str:
        return (
            f"bench {self.scenario} {self.engine} rps={self.rps:.0f} "
            f"p50_ms={self._median(self.app, 'p50_ms'):.2f} "
            f"p99_ms={self._median(self.app, 'p99_ms'):.2f} "
            f"ceiling_rps={self.ceiling_rps:.0f} ratio={self.ratio:.3f}"
        )

    def table_row(self) -> str:
        cpu = statistics.median(run.server_cpu_us for run in self.app)
        ceiling_cpu = statistics.median(run.server_cpu_us for run in self.ceiling)
        others = statistics.median(run.cpu.other_share for run in self.app + self.ceiling)
        spread = (
            f"{min(r.result.rps for r in self.app):.0f}–{max(r.result.rps for r in self.app):.0f}"
        )
        return (
            f"| {self.scenario} | {self.engine} | {self.rps:,.0f} ({spread}) "
            f"| {self._median(self.app, 'p50_ms'):.2f} | {self._median(self.app, 'p99_ms'):.2f} "
            f"| {self.ceiling_rps:,.0f} | {self._median(self.ceiling, 'p99_ms'):.2f} "
            f"| **{self.ratio:.3f}** | {cpu:,.0f} / {ceiling_cpu:,.0f} | {others:.0%} "
            f"| {self.verdict()} |"
        )


@dataclass(frozen=True)
class UploadRow:
    engine: str
    runs: list[UploadRun]

    @property
    def mb_s(self) -> float:
        return statistics.median(run.mb_s for run in self.runs)

    @property
    def ceiling_mb_s(self) -> float:
        return statistics.median(run.ceiling_mb_s for run in self.runs)

    @property
    def ratio(self) -> float:
        return self.mb_s / self.ceiling_mb_s if self.ceiling_mb_s else 0.0

    @property
    def rss_growth_mb(self) -> float:
        return max(run.rss_growth_mb for run in self.runs)

    @property
    def md5_mb_s(self) -> float:
        return statistics.median(run.md5_mb_s for run in self.runs)

    def verdict(self) -> str:
        if not all(run.ok for run in self.runs):
            return "INVALID (failed upload)"
        misses = []
        if self.ratio < MIN_UPLOAD_RATIO:
            misses.append(f"ratio < {MIN_UPLOAD_RATIO}")
        if self.rss_growth_mb >= MAX_RSS_GROWTH_MB:
            misses.append(f"RSS growth >= {MAX_RSS_GROWTH_MB:.0f} MB")
        return "MISSED: " + ", ".join(misses) if misses else "met"

    def line(self) -> str:
        return (
            f"bench upload {self.engine} mb_s={self.mb_s:.0f} "
            f"ceiling_mb_s={self.ceiling_mb_s:.0f} ratio={self.ratio:.3f} "
            f"rss_growth_mb={self.rss_growth_mb:.1f} md5_cap_mb_s={self.md5_mb_s:.0f}"
        )

    def table_row(self) -> str:
        spread = f"{min(r.mb_s for r in self.runs):.0f}–{max(r.mb_s for r in self.runs):.0f}"
        return (
            f"| upload | {self.engine} | {self.mb_s:,.0f} ({spread}) | {self.ceiling_mb_s:,.0f} "
            f"| **{self.ratio:.3f}** | {self.rss_growth_mb:.1f} | {self.md5_mb_s:,.0f} "
            f"| {self.verdict()} |"
        )


def request_rows(runs: list[Run]) -> list[Row]:
    keys = list(dict.fromkeys((run.scenario, run.engine) for run in runs))
    return [
        Row(
            scenario,
            engine,
            [r for r in runs if (r.scenario, r.engine, r.target) == (scenario, engine, "app")],
            [r for r in runs if (r.scenario, r.engine, r.target) == (scenario, engine, "ceiling")],
        )
        for scenario, engine in keys
    ]


def upload_rows(runs: list[UploadRun]) -> list[UploadRow]:
    engines = list(dict.fromkeys(run.engine for run in runs))
    return [UploadRow(engine, [r for r in runs if r.engine == engine]) for engine in engines]


def run_line(run: Run) -> str:
    r, cpu = run.result, run.cpu
    db = f"+{cpu.per_request_us(cpu.database, r.requests):.0f}db" if cpu.database else ""
    gen = f"+{cpu.per_request_us(cpu.generator, r.requests):.0f}gen"
    return (
        f"  [{run.engine} #{run.repeat}] {run.scenario:<19} {run.target:<7} "
        f"rps={r.rps:>7.0f} p50={r.p50_ms:6.2f}ms p99={r.p99_ms:6.2f}ms max={r.max_ms:6.0f}ms "
        f"cpu_us/req={run.server_cpu_us:.0f}{db}{gen} "
        f"others={cpu.other_share:.0%} errors={r.socket_errors} non2xx={r.non2xx} "
        f"new_tasks={r.new_tasks}/{r.requests}"
    )


def _command_line(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return ""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode in (0, 1) else ""


def revision() -> str:
    """The commit measured, and whether src/ had uncommitted changes (read-only git)."""
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head or 'unknown commit'}" + (" + uncommitted changes in src/" if dirty else "")


def machine() -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": _command_line(["wrk", "-v"]).split(" [")[0],  # drop "[epoll] Copyright ..."
        "postgresql": _command_line(["psql", "--version"]),
    }


def write_markdown(
    path: Path, rows: list[Row], uploads: list[UploadRow], runs: list[Run], settings: dict[str, str]
) -> None:
    info = machine()
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`python -m bench`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "Each figure is the median of the repeats; ratio = Frontdesk median / ceiling median, "
        "both measured in the same run, interleaved (app, ceiling, app, ceiling, …).",
        "",
        "| setting | value |",
        "|---|---|",
        f'| machine | nproc = {info["nproc"]}, CPU "{info["cpu"]}", kernel {info["kernel"]} |',
        f"| software | Python {info['python']}, SQLite {info['sqlite']}, {info['postgresql']} |",
        *(f"| {key} | {value} |" for key, value in settings.items()),
        "",
    ]
    if rows:
        lines += [
            "## requests: getmessage, integrations/call and Planfix newMessage "
            "(targets: ratio ≥ 0.40, p99 ≤ 50 ms)",
            "",
            "| scenario | engine | req/s (min–max) | p50 ms | p99 ms | ceiling req/s "
            "| ceiling p99 ms | ratio | server CPU µs/req (app / ceiling) | others¹ | target |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *(row.table_row() for row in rows),
            "",
            "¹ median share of the machine's CPU used by processes outside the benchmark during "
            "the runs (another user's tests, say); above 10% the figures are disturbed.",
            "",
        ]
    if uploads:
        lines += [
            "## upload (targets: ratio ≥ 0.50 of `cp` + `sync`, RSS growth < 30 MB)",
            "",
            "MB = 2^20 bytes. RSS growth is the largest of the repeats. `md5sum` MB/s is the "
            "single-stream MD5 of the same file: the protocol's `md5_hash` makes it the cap "
            "of any upload.",
            "",
            "| scenario | engine | MB/s (min–max) | `cp`+`sync` MB/s | ratio | RSS growth MB "
            "| `md5sum` MB/s | target |",
            "|---|---|---|---|---|---|---|---|",
            *(row.table_row() for row in uploads),
            "",
        ]
    lines += ["## Summary lines", "", "```", *summary_lines(rows, uploads), "```", ""]
    if runs:
        lines += ["## Every run", "", "```", *(run_line(run).strip() for run in runs), "```", ""]
    path.write_text("\n".join(lines))


def summary_lines(rows: list[Row], uploads: list[UploadRow]) -> list[str]:
    return [row.line() for row in rows] + [row.line() for row in uploads]
