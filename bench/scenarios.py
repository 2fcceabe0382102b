"""The request scenarios (bench/workloads.py): Frontdesk and its ceiling, interleaved.

Order per repeat: for each scenario, app then ceiling. Interleaving is what
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
from bench.engines import Engine, analyze, prepared_token
from bench.load import LoadResult, LoadSpec, run_load
from bench.servers import ceiling_command, free_port, frontdesk_command, running
from bench.workloads import EXISTING_PREFIX, SCENARIOS

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
            expected_new = r.requests if SCENARIOS[self.scenario][1] == "new" else 0
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
    token: str, scenario: str, new_prefix: str, opts: Options
) -> Callable[[str, str, float], LoadSpec]:
    """Load for one server: (url, phase, seconds) -> spec; warm-up and run use new keys."""
    workload, mode = SCENARIOS[scenario]

    def spec(url: str, phase: str, seconds: float) -> LoadSpec:
        return LoadSpec(
            url=url,
            token=token,
            workload=workload,
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
    workloads = {SCENARIOS[scenario][0].name: SCENARIOS[scenario][0] for scenario in scenarios}
    command = frontdesk_command(free_port(), engine.workers)
    with running("frontdesk (setup)", command, engine.app_env(), log) as server:
        tokens = {
            name: prepared_token(server.url, workload, opts.channels)
            for name, workload in workloads.items()
        }
    analyze(engine)
    names = ", ".join(workloads)
    print(f"  {engine.name}: tokens issued; {opts.channels} existing keys each for {names}")
    ceiling_token = secrets.token_urlsafe(32)  # as long as Frontdesk's tokens
    tag = secrets.token_hex(3)  # new keys stay unique across invocations too
    runs = []
    for repeat in range(1, opts.repeats + 1):
        for scenario in scenarios:
            for target in TARGETS:
                app_token = tokens[SCENARIOS[scenario][0].name]
                spec = _spec_factory(
                    app_token if target == "app" else ceiling_token,
                    scenario,
                    f"bench-new-{tag}-{repeat}-{target}-",
                    opts,
                )
                port = free_port()
                if target == "app":
                    command, env = frontdesk_command(port, engine.workers), engine.app_env()
                else:
                    command = ceiling_command(port, engine.workers)
                    env = engine.ceiling_env(ceiling_token)
                name = f"{target} on {engine.name}"
                result, cpu = _measure(name, command, env, log, spec, opts)
                runs.append(Run(scenario, engine.name, target, repeat, result, cpu))
                report(runs[-1])
    return runs
