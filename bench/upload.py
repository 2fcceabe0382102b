"""The upload scenario: one large file through POST /v1/files/upload, against `cp` + `sync`.

The client is curl (`-F file=@FILE`, no `Expect: 100-continue` round trip); its time_total
includes the server writing the file and answering. The ceiling is the same bytes copied by
`cp` and made durable by `sync`, timed in the same run. A `sync` before each timed step makes
sure neither pays for the other's dirty pages.

Memory: the server's RSS is sampled every 5 ms during the upload (and its VmHWM is reset and
read back, where the kernel allows), per process; growth is peak minus the RSS just before.
A small upload first loads the lazily imported code, so that it is not counted as growth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.engines import Engine, get_token
from bench.servers import Server, free_port, frontdesk_command, running

MB = 1024 * 1024


@dataclass(frozen=True)
class UploadRun:
    engine: str
    repeat: int
    mb_s: float
    ceiling_mb_s: float
    rss_growth_mb: float
    #: single-stream MD5 of the same file (`md5sum`): the protocol's md5_hash caps an upload here
    md5_mb_s: float
    ok: bool  # 200 and the md5_hash the file has
    detail: str


def make_file(path: Path, size_mb: int) -> str:
    """Random bytes (incompressible, no sparse tricks); returns the MD5."""
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as out:
        for _ in range(size_mb):
            chunk = os.urandom(MB)
            md5.update(chunk)
            out.write(chunk)
    return md5.hexdigest()


class RssSampler:
    """Peak RSS of each server process while the upload runs."""

    def __init__(self, server: Server) -> None:
        self.procs = server.processes()
        self.baseline = {p.pid: self._rss(p) for p in self.procs}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _rss(proc: psutil.Process) -> int:
        try:
            return int(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            return 0

    @staticmethod
    def _hwm(pid: int) -> int:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def __enter__(self) -> RssSampler:
        for proc in self.procs:
            # "5" resets the peak RSS the kernel tracks (VmHWM), so it covers only the upload.
            with contextlib.suppress(OSError):
                Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            for proc in self.procs:
                self.peak[proc.pid] = max(self.peak[proc.pid], self._rss(proc))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                self.peak[proc.pid] = max(self.peak[proc.pid], self._hwm(proc.pid))

    def growth_mb(self) -> float:
        return float(max(self.peak[pid] - self.baseline[pid] for pid in self.baseline)) / MB


def _sync() -> None:
    subprocess.run(["sync"], check=True)


def _curl_upload(url: str, token: str, path: Path, out: Path) -> tuple[int, float, str]:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-H",
            "Expect:",
            "-H",
            f"Authorization: Bearer {token}",
            "-F",
            f"file=@{path}",
            "-o",
            str(out),
            "-w",
            "%{http_code} %{time_total}",
            url + "/v1/files/upload",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return 0, 0.0, done.stderr.strip()
    status, seconds = done.stdout.split()
    return int(status), float(seconds), out.read_text(errors="replace")


def _cp_sync(source: Path, dest: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(dest)], check=True)
    _sync()
    return time.perf_counter() - started


def _md5sum(source: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["md5sum", str(source)], check=True, capture_output=True)
    return time.perf_counter() - started


def run_engine(
    engine: Engine, source: Path, md5: str, repeats: int, workdir: Path
) -> list[UploadRun]:
    size_mb = source.stat().st_size / MB
    small = workdir / "small.bin"
    make_file(small, 1)
    runs = []
    log = workdir / f"server-{engine.name}.log"
    command = frontdesk_command(free_port(), engine.workers)
    with running(f"frontdesk upload on {engine.name}", command, engine.app_env(), log) as server:
        token = get_token(server.url)
        for _ in range(2 * engine.workers):  # warm every worker's upload path (lazy imports)
            _curl_upload(server.url, token, small, workdir / "answer.json")
        for repeat in range(1, repeats + 1):
            _sync()
            time.sleep(0.5)  # let the server settle before the baseline
            with RssSampler(server) as rss:
                status, seconds, answer = _curl_upload(
                    server.url, token, source, workdir / "answer.json"
                )
            ok, detail = _check(status, answer, md5)
            if ok:
                guid = json.loads(answer)["guid"]
                _sync()  # flush the upload before the ceiling is timed, then free the disk
                (engine.data_dir / "files" / guid[:2] / guid).unlink(missing_ok=True)
            _sync()
            dest = workdir / "cp-copy.bin"
            cp_seconds = _cp_sync(source, dest)
            dest.unlink()
            md5_seconds = _md5sum(source)
            runs.append(
                UploadRun(
                    engine.name,
                    repeat,
                    size_mb / seconds if ok and seconds else 0.0,
                    size_mb / cp_seconds,
                    rss.growth_mb(),
                    size_mb / md5_seconds,
                    ok,
                    detail,
                )
            )
    return runs


def _check(status: int, answer: str, md5: str) -> tuple[bool, str]:
    if status != 200:
        return False, f"HTTP {status}: {answer[:300]}"
    try:
        got = json.loads(answer).get("md5_hash")
    except ValueError:
        return False, f"not JSON: {answer[:300]}"
    if got != md5:
        return False, f"md5_hash {got} != file's {md5}"
    return True, "md5 ok"
