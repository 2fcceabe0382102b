"""`python -m bench`: every scenario on every engine, then one summary line per pair.

Usage: python -m bench [--duration 10] [--repeats 3] [--engines sqlite,postgresql] ...
The last lines printed are the summary (`bench SCENARIO ENGINE ...`); bench/RESULTS.md gets the
same figures as a table. Exit status 1 when any run had errors (its figures are worthless).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import cpu, engines, report, scenarios, upload
from bench.load import pick_generator

ENGINES = ("sqlite", "postgresql")
SCENARIOS = (*scenarios.SCENARIOS, "upload")


def _csv(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = set(items) - set(choices)
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {sorted(unknown)}; choose from {choices}")
        return items

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="discarded seconds before it")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--channels",
        type=int,
        default=1000,
        help="existing keys to spread over (chat channels and Planfix chats; call ids for "
        "call_repeated)",
    )
    parser.add_argument("--engines", type=_csv(ENGINES), default=list(ENGINES))
    parser.add_argument("--scenarios", type=_csv(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--sqlite-workers", type=int, default=1, help="one writer is the design")
    parser.add_argument("--pg-workers", type=int, default=2, help="for app and ceiling alike")
    parser.add_argument("--upload-mb", type=int, default=1024, help="size of the uploaded file")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace, generator: str, probe: float) -> dict[str, str]:
    info = report.machine()
    tool = info["wrk"] if generator == "wrk" else "bench/pyload.py (Python, asyncio + uvloop)"
    settings = {
        "load generator": f"{tool}, own process, {args.connections} connections",
        "run length": f"{args.warmup:g} s warm-up (discarded) + {args.duration:g} s measured",
        "repeats": f"{args.repeats} per figure, interleaved app/ceiling; medians",
        "workers": f"SQLite {args.sqlite_workers} (app and ceiling), "
        f"PostgreSQL {args.pg_workers} (app and ceiling)",
        "existing keys": f"{args.channels} channels and {args.channels} Planfix chats (one "
        f"message each) and {args.channels} call ids (one call each), made before the runs",
        "host speed probe": f"{probe:,.0f} single-row SQLite commits/s "
        "(performance.md measured 47,277 on this kind of machine)",
        "code": report.revision(),
    }
    if "upload" in args.scenarios:
        settings["upload"] = f"{args.upload_mb} MB of random bytes, {args.repeats} repeats"
    return settings


class Collected:
    """Everything measured so far, and what went wrong (each problem voids a figure)."""

    def __init__(self) -> None:
        self.runs: list[scenarios.Run] = []
        self.uploads: list[upload.UploadRun] = []
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        self.problems.append(text)
        print(f"  !!! {text}", flush=True)


def _engine(
    name: str,
    args: argparse.Namespace,
    opts: scenarios.Options,
    workdir: Path,
    source: Path | None,
    md5: str,
    out: Collected,
) -> None:
    workers = args.sqlite_workers if name == "sqlite" else args.pg_workers
    print(f"bench: {name}, {workers} worker(s)")
    with engines.prepared(name, workers, workdir) as engine:
        chosen = [s for s in args.scenarios if s in scenarios.SCENARIOS]
        if chosen:
            out.runs += scenarios.run_engine(engine, chosen, opts, workdir, _print_run(out))
        if source is None:
            return
        for run in upload.run_engine(engine, source, md5, args.repeats, workdir):
            print(
                f"  [{name} #{run.repeat}] upload  mb_s={run.mb_s:,.0f} "
                f"cp+sync mb_s={run.ceiling_mb_s:,.0f} "
                f"rss_growth={run.rss_growth_mb:.1f}MB {run.detail}"
            )
            if not run.ok:
                out.problem(f"UPLOAD FAILED on {name} #{run.repeat}: {run.detail}")
            out.uploads.append(run)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress via make
    generator = pick_generator(args.generator)
    missing = generator != "wrk" and args.generator == "auto"
    note = " (wrk not found: apt-get install wrk for the measured tool)" if missing else ""
    print(f"bench: load generator: {generator}{note}")
    workdir = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    print(f"bench: work directory {workdir}")
    opts = scenarios.Options(
        args.duration, args.warmup, args.repeats, args.connections, args.channels, generator
    )
    out = Collected()
    started = time.monotonic()
    try:
        probe = cpu.speed_probe(str(workdir / "probe.db"))
        print(f"bench: host speed probe: {probe:,.0f} single-row SQLite commits/s")
        source, md5 = None, ""
        if "upload" in args.scenarios:
            source = workdir / "upload.bin"
            print(f"bench: writing {args.upload_mb} MB of random bytes to {source}")
            md5 = upload.make_file(source, args.upload_mb)
        for name in args.engines:
            if name == "postgresql" and (why := engines.ensure_postgres()):
                out.problem(f"postgresql skipped: {why}")
                continue
            try:
                _engine(name, args, opts, workdir, source, md5, out)
            except Exception as exc:  # one engine failing must not lose the other's figures
                out.problem(f"{name} aborted: {type(exc).__name__}: {exc}")
    finally:
        if args.keep:
            print(f"bench: work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    rows, upload_rows = report.request_rows(out.runs), report.upload_rows(out.uploads)
    report.write_markdown(
        args.results, rows, upload_rows, out.runs, _settings(args, generator, probe)
    )
    print(f"bench: {time.monotonic() - started:.0f} s; wrote {args.results}")
    for row in rows:
        print(f"  target {row.scenario} {row.engine}: {row.verdict()}")
    for upload_row in upload_rows:
        print(f"  target upload {upload_row.engine}: {upload_row.verdict()}")
    for problem in out.problems:
        print(f"  !!! {problem}")
    print("\n".join(report.summary_lines(rows, upload_rows)))
    return 1 if out.problems else 0


def _print_run(out: Collected) -> Callable[[scenarios.Run], None]:
    def print_run(run: scenarios.Run) -> None:
        print(report.run_line(run), flush=True)
        for issue in run.check():
            if run.result.failed:  # errors: the run measured failures, not the server
                out.problem(
                    f"RUN FAILED {run.scenario} {run.engine} {run.target} #{run.repeat}: {issue}"
                )
            else:
                print(f"    ! warning: {issue}", flush=True)

    return print_run


if __name__ == "__main__":
    sys.exit(main())
