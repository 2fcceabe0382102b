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

from bench.cpu import CpuMeter, CpuUse
from bench.engines import Engine, token_and_channels
from bench.load import EXISTING_PREFIX, LoadResult, LoadSpec, run_load
from bench.servers import ceiling_command, free_port, frontdesk_command, running

SCENARIOS = {"getmessage_existing": "existing", "getmessage_new": "new"}
TARGETS = ("app", "ceiling")
#: above this share of the machine used by others, a run's figures are flagged as disturbed
OTHER_CPU_WARNING = 0.10


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
    cpu: CpuUse

    @property
    def server_cpu_us(self) -> float:
        """Server CPU time per request, all its processes: the portable cost figure."""
        return self.cpu.per_request_us(self.cpu.server, self.result.requests)

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
        if self.cpu.other_share > OTHER_CPU_WARNING:
            issues.append(
                f"host busy: processes outside the benchmark used {self.cpu.other_share:.0%} "
                "of the CPU during this run"
            )
        return issues


def _measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    log: Path,
    spec: Callable[[str, str, float], LoadSpec],
    opts: Options,
) -> tuple[LoadResult, CpuUse]:
    with running(name, command, env, log) as server:
        run_load(spec(server.url, "warm", opts.warmup), opts.generator)
        meter = CpuMeter(server)
        meter.start()
        result = run_load(spec(server.url, "run", opts.seconds), opts.generator)
        cpu = meter.stop()
    return result, cpu


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
    engine: Engine,
    scenarios: list[str],
    opts: Options,
    workdir: Path,
    report: Callable[[Run], None],
) -> list[Run]:
    log = workdir / f"server-{engine.name}.log"
    command = frontdesk_command(free_port(), engine.workers)
    with running("frontdesk (setup)", command, engine.app_env(), log) as server:
        tokens = {"app": token_and_channels(server.url, opts.channels)}
    print(f"  {engine.name}: token issued; {opts.channels} channels pre-created")
    tokens["ceiling"] = secrets.token_urlsafe(32)  # as long as Frontdesk's tokens
    tag = secrets.token_hex(3)  # new channel ids stay unique across invocations too
    runs = []
    for repeat in range(1, opts.repeats + 1):
        for scenario in scenarios:
            for target in TARGETS:
                spec = _spec_factory(
                    tokens[target],
                    SCENARIOS[scenario],
                    f"bench-new-{tag}-{repeat}-{target}-",
                    opts,
                )
                port = free_port()
                if target == "app":
                    command, env = frontdesk_command(port, engine.workers), engine.app_env()
                else:
                    command = ceiling_command(port, engine.workers)
                    env = engine.ceiling_env(tokens["ceiling"])
                name = f"{target} on {engine.name}"
                result, cpu = _measure(name, command, env, log, spec, opts)
                runs.append(Run(scenario, engine.name, target, repeat, result, cpu))
                report(runs[-1])
    return runs
