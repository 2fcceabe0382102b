"""The getmessage scenarios: Frontdesk and its ceiling, interleaved, on one engine.

Order per repeat: existing/app, existing/ceiling, new/app, new/ceiling. Interleaving is what
makes the ratio trustworthy on a shared host: slow drift hits app and ceiling alike
(performance.md §6). Every run gets a freshly started server, a 2 s warm-up that is thrown
away, then the measured run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.engines import Engine, token_and_channels
from bench.load import EXISTING_PREFIX, LoadResult, LoadSpec, run_load
from bench.servers import ceiling_command, free_port, frontdesk_command, running

SCENARIOS = {"getmessage_existing": "existing", "getmessage_new": "new"}
TARGETS = ("app", "ceiling")


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float
    repeats: int
    connections: int
    channels: int
    generator: str


@dataclass(frozen=True)
class Run:
    scenario: str
    engine: str
    target: str  # "app" (Frontdesk) or "ceiling"
    repeat: int
    result: LoadResult
    server_cpu_us: float  # server CPU time per request, all its processes

    def check(self) -> list[str]:
        """What makes this run's figures suspect, loudest first."""
        r = self.result
        issues = []
        if r.requests == 0:
            issues.append("no request completed")
        if r.non2xx:
            issues.append(f"{r.non2xx} non-2xx responses")
        if r.socket_errors:
            issues.append(f"{r.socket_errors} socket errors or timeouts")
        if self.target == "app":
            if r.problems:
                issues.append(f"{r.problems} answers carried an error_code warning")
            expected_new = r.requests if self.scenario == "getmessage_new" else 0
            # wrk counts answers to requests still in flight at the end; allow that slack
            if abs(r.new_tasks - expected_new) > 128:
                issues.append(f"is_new_task was true in {r.new_tasks} of {r.requests} answers")
        return issues


def _measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    log: Path,
    spec: Callable[[str, str, float], LoadSpec],
    opts: Options,
) -> tuple[LoadResult, float]:
    with running(name, command, env, log) as server:
        run_load(spec(server.url, "warm", opts.warmup), opts.generator)
        cpu_before = server.cpu_seconds()
        result = run_load(spec(server.url, "run", opts.seconds), opts.generator)
        cpu = server.cpu_seconds() - cpu_before
    return result, cpu / result.requests * 1e6 if result.requests else 0.0


def _spec_factory(
    token: str, mode: str, new_prefix: str, opts: Options
) -> Callable[[str, str, float], LoadSpec]:
    """Load for one server: (url, phase, seconds) -> spec; warm-up and run use new channels."""

    def spec(url: str, phase: str, seconds: float) -> LoadSpec:
        return LoadSpec(
            url=url,
            token=token,
            mode=mode,
            channels=opts.channels,
            prefix=EXISTING_PREFIX if mode == "existing" else f"{new_prefix}{phase}-",
            connections=opts.connections,
            seconds=seconds,
        )

    return spec


def run_engine(
    engine: Engine, scenarios: list[str], opts: Options, workdir: Path, report: Callable[[Run], None]
) -> list[Run]:
    log = workdir / f"server-{engine.name}.log"
    with running(
        "frontdesk (setup)", frontdesk_command(free_port(), engine.workers), engine.app_env(), log
    ) as server:
        token = token_and_channels(server.url, opts.channels)
    print(f"  {engine.name}: token issued; {opts.channels} channels pre-created")
    ceiling_token = secrets.token_urlsafe(32)  # as long as Frontdesk's tokens
    tag = secrets.token_hex(3)  # new channel ids stay unique across invocations too
    runs = []
    for repeat in range(1, opts.repeats + 1):
        for scenario in scenarios:
            mode = SCENARIOS[scenario]
            for target in TARGETS:
                is_app = target == "app"
                spec = _spec_factory(
                    token if is_app else ceiling_token,
                    mode,
                    f"bench-new-{tag}-{repeat}-{target}-",
                    opts,
                )
                port = free_port()
                if is_app:
                    command = frontdesk_command(port, engine.workers)
                    env = engine.app_env()
                else:
                    command = ceiling_command(port, engine.workers)
                    env = engine.ceiling_env(ceiling_token)
                result, cpu_us = _measure(f"{target} on {engine.name}", command, env, log, spec, opts)
                run = Run(scenario, engine.name, target, repeat, result, cpu_us)
                runs.append(run)
                report(run)
    return runs
