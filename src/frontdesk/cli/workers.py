"""`serve --workers N`: N processes, each accepting on a listening socket of its own.

uvicorn's own workers share one listening socket, and the process that is awake takes the
connections that arrive together: 64 connections opened at once were split 18/46 between two
workers, and the busier one's requests waited three times as long (p99 144 ms against 55 ms
for an even split). With SO_REUSEPORT every worker listens on a socket of its own on the same
port, and the kernel spreads new connections over them by a hash of their addresses, whatever
each process is busy with.

The supervisor (this process) opens the N listening sockets, before any worker starts (a port
in use is reported at once, and port 0 becomes a real one), and keeps them: a worker gets
its slot's socket, and so does the worker that replaces it. A socket closed with
connections in its queue resets them, and SIGHUP closed every old worker's socket: under
100 clients connecting anew for each request, 41-56 of them were reset. Kept open, the
queue waits for the next worker of the slot, which takes over the old one's socket. A
worker that dies after it started serving is replaced; one that dies before is a startup
failure, which a restart would only repeat, so the supervisor stops. Workers die with the
supervisor (PR_SET_PDEATHSIG), and SIGHUP replaces them all, as it does under uvicorn's own
supervisor.

Only Linux spreads connections over SO_REUSEPORT sockets; elsewhere `serve` keeps uvicorn's
workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

#: how long a worker may take to stop once told to: uvicorn's graceful shutdown of requests
#: (10 s, given by `serve`), then the delivery worker's grace for sends under way (5 s,
#: delivery.worker.STOP_GRACE_SECONDS), then settling them
STOP_SECONDS = 25.0
#: how long new workers may take to serve after SIGHUP before the old ones are kept instead
START_SECONDS = 30.0


def balanced_workers_available() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _die_with_parent() -> None:
    """Ask the kernel to stop this worker when the supervisor dies, even by SIGKILL: a worker
    left behind would go on taking its share of the port's connections beside a new server."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the prctl
        raise SystemExit(1)


def _run_worker(options: dict[str, Any], sock: socket.socket, serving: Any) -> None:
    import uvicorn

    class ReportingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # the app's startup went well and the socket accepts
                serving.set()
                logging.getLogger("uvicorn.error").info("Worker %d serving", os.getpid())

    _die_with_parent()
    ReportingServer(uvicorn.Config(**options)).run(sockets=[sock])


@dataclass(frozen=True)
class _Worker:
    process: BaseProcess
    serving: Any  # a multiprocessing Event: set once the worker serves


class Supervisor:
    """Starts the workers and replaces the ones that die; SIGINT or SIGTERM stops them all,
    SIGHUP replaces them all (new ones start beside the old, which finish their requests)."""

    def __init__(self, options: dict[str, Any], sockets: list[socket.socket]) -> None:
        self._options = options
        #: the listening socket of each worker slot, kept across the slot's workers
        self._sockets = sockets
        self._context = multiprocessing.get_context("spawn")
        #: signals received, handled by the loop (a handler must not take locks)
        self._signals: list[int] = []
        self._workers: list[_Worker] = []

    def run(self) -> int:
        """Serve until told to stop; the exit status."""
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            self._workers = [self._start(slot) for slot in range(len(self._sockets))]
            return self._supervise()
        finally:
            # The port closes with the workers' own copies of the sockets: kept open here,
            # it took connections that no one would serve, reset once the workers had gone.
            for sock in self._sockets:
                sock.close()
            self._stop(self._workers)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, _frame: object) -> None:
        self._signals.append(sig)

    def _supervise(self) -> int:
        while True:
            time.sleep(0.25)
            while self._signals:
                if self._signals.pop(0) != signal.SIGHUP:
                    return 0
                self._replace_all()
            status = self._replace_dead()
            if status:
                return status

    def _replace_all(self) -> None:
        """New workers beside the old; the old stop once every new one serves (the port is
        never left unserved). New ones that cannot start (code broken since) are stopped and
        the old ones go on serving."""
        new = [self._start(slot) for slot in range(len(self._sockets))]
        deadline = time.monotonic() + START_SECONDS
        for worker in new:
            while not worker.serving.wait(0.1) and worker.process.is_alive():
                if time.monotonic() > deadline:
                    break
        retiring = new
        if all(worker.serving.is_set() for worker in new):
            retiring, self._workers = self._workers, new
        else:
            print("new workers failed to start; the running ones go on", file=sys.stderr)
        self._stop(retiring)

    def _start(self, slot: int) -> _Worker:
        serving = self._context.Event()
        process = self._context.Process(
            target=_run_worker, args=(self._options, self._sockets[slot], serving)
        )
        process.start()
        return _Worker(process, serving)

    def _replace_dead(self) -> int:
        """0, or the exit status of a worker that failed to start."""
        for n, worker in enumerate(self._workers):
            process = worker.process
            if process.is_alive() or self._signals:  # a Ctrl-C reaches the workers too
                continue
            code = process.exitcode or 0
            if not worker.serving.is_set():
                print(f"worker {process.pid} failed to start (exit {code})", file=sys.stderr)
                return code or 1
            print(f"worker {process.pid} exited ({code}); starting another", file=sys.stderr)
            self._workers[n] = self._start(n)
        return 0

    @staticmethod
    def _stop(workers: list[_Worker]) -> None:
        for worker in workers:
            pid = worker.process.pid
            if worker.process.is_alive() and pid is not None:
                os.kill(pid, signal.SIGTERM)  # uvicorn finishes its requests first
        deadline = time.monotonic() + STOP_SECONDS
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()


def serve(options: dict[str, Any], host: str, port: int, workers: int) -> None:
    """Serve uvicorn `options` (a Config's keyword arguments, without host and port) from
    `workers` processes: our supervisor where the kernel balances SO_REUSEPORT, uvicorn's
    own elsewhere and for a single process."""
    if workers > 1 and balanced_workers_available():
        raise SystemExit(serve_workers(options, host, port, workers))
    import uvicorn

    uvicorn.run(**options, host=host, port=port, workers=workers)


def serve_workers(options: dict[str, Any], host: str, port: int, workers: int) -> int:
    """Serve uvicorn `options` (a Config's keyword arguments, without host and port) from
    `workers` processes; the exit status."""
    sockets = [_port_socket(host, port)]
    try:
        port = sockets[0].getsockname()[1]  # (port 0 is now a real one)
        sockets += [_port_socket(host, port) for _ in range(workers - 1)]
        for sock in sockets:
            sock.listen(2048)  # uvicorn's own backlog
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        print(f"{workers} workers serving http://{where}", file=sys.stderr, flush=True)
        return Supervisor(options, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
