"""Where a Frontdesk server spends its time under the benchmark's load: py-spy, summarised.

    python -m bench.profile [--engine sqlite] [--scenario getmessage_new] [--seconds 20]

Starts the real server on a fresh database (as `python -m bench` does), drives it with the same
load generator, samples it with `py-spy record` (pip install py-spy), and prints the functions
with the most samples, inclusive and self, plus self time per package. Sampling pauses the server
briefly 100 times a second; the figures are shares of samples, not of a quiet run's time.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench import engines
from bench.load import LoadSpec, pick_generator, run_load
from bench.servers import VENV_BIN, free_port, frontdesk_command, running
from bench.workloads import EXISTING_PREFIX, SCENARIOS

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")
PACKAGES = ("frontdesk", "litestar", "sqlalchemy", "asyncpg", "uvicorn", "msgspec", "multipart")


def _package(frame: str) -> str:
    match = FRAME.match(frame)
    path = match["file"] if match else frame
    for name in PACKAGES:
        if f"/{name}/" in path or path.startswith(f"{name}/"):
            return name
    if "<" in path or "/lib/python3" in path or path.startswith(("asyncio/", "sqlite3/")):
        return "stdlib/builtins"
    return "other"


def summarise(raw: Path, top: int) -> None:
    """Inclusive and self shares from py-spy's collapsed stacks ("a;b;c 42" lines)."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread = next((f for f in stack.split(";") if f.startswith("thread ")), "thread ?")
        threads[thread.split(": ", 1)[-1]] += count
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            leaf[frames[-1]] += count
            packages[_package(frames[-1])] += count
    if not total:
        print("no samples")
        return
    print(f"\n{total} samples; by thread: ")
    for name, count in threads.most_common():
        print(f"  {count / total:6.1%}  {name}")
    print("\nInclusive (the function and what it calls):")
    for frame, count in inclusive.most_common(top):
        print(f"  {count / total:6.1%}  {frame}")
    print("\nSelf (the function's own code):")
    for frame, count in leaf.most_common(top):
        print(f"  {count / total:6.1%}  {frame}")
    print("\nSelf time by package:")
    for name, count in packages.most_common():
        print(f"  {count / total:6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--scenario", choices=tuple(SCENARIOS), default="getmessage_new")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only the thread holding the GIL: where the one core of Python goes "
        "(without it, threads waiting for the GIL are counted as busy)",
    )
    parser.add_argument("--native", action="store_true", help="include C/Cython frames")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or shutil.which(str(VENV_BIN / "py-spy"))
    if py_spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    generator = pick_generator(args.generator)
    if args.engine == "postgresql" and (why := engines.ensure_postgres()):
        raise SystemExit(why)
    workdir = Path(tempfile.mkdtemp(prefix="frontdesk-profile-"))
    raw = args.raw or workdir / "stacks.txt"
    try:
        with engines.prepared(args.engine, args.workers, workdir) as engine:
            command = frontdesk_command(free_port(), args.workers)
            with running("frontdesk", command, engine.app_env(), workdir / "server.log") as server:
                workload, mode = SCENARIOS[args.scenario]
                token = engines.prepared_token(server.url, workload, 1000)
                prefix = EXISTING_PREFIX if mode == "existing" else f"profile-{time.time_ns()}-"
                spec = LoadSpec(
                    server.url,
                    token,
                    workload,
                    mode,
                    1000,
                    prefix,
                    args.connections,
                    args.seconds + 4,
                )
                load = threading.Thread(target=run_load, args=(spec, generator))
                load.start()
                time.sleep(2)  # warm-up: sample the steady state only
                record = [py_spy, "record", "--pid", str(server.pid), "--subprocesses"]
                options = ["--threads", "--rate", "100", "--duration", str(args.seconds)]
                output = ["--format", "raw", "--output", str(raw)]
                # py-spy pauses the process for each sample (100/s): unpaused sampling
                # (--nonblocking) reads torn stacks, which skews the inclusive figures.
                extra = ["--native"] if args.native else []
                extra += ["--gil"] if args.gil else []
                done = subprocess.run(
                    [*record, *options, *extra, *output], capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise SystemExit(f"py-spy failed: {done.stderr.strip()}")
                load.join()
        summarise(raw, args.top)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
