"""The two storage engines: where their data lives, how a run's database is made and dropped.

SQLite lives in a fresh temporary data directory. PostgreSQL gets a fresh database,
`frontdesk_bench`, on the local cluster (started if it is down), dropped again at the end.
Both are seeded with `frontdesk demo`, the same command a user runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import ceiling
from bench.servers import ROOT, VENV_BIN
from bench.workloads import EXISTING_PREFIX, Workload

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DATABASE = "frontdesk_bench"
DEMO_LOGIN = ("unique12345@login.edu", "czWhgtoLnm****")  # printed by `frontdesk demo --json`
DEMO_AGENT = ("agent@frontdesk.local", "demo-security-key-0000000000000000")  # the same


@dataclass(frozen=True)
class Engine:
    name: str  # "sqlite" or "postgresql"
    workers: int
    data_dir: Path
    database_url: str  # "" for SQLite: Frontdesk's default file under data_dir
    ceiling_db: str

    def app_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        env["FRONTDESK_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["FRONTDESK_DATABASE_URL"] = self.database_url
        # The default quota (5,000 requests per 10 minutes) would answer 429 within a second.
        # A huge limit rather than 0 keeps the limiter's code on the measured path.
        env["FRONTDESK_RATE_LIMIT_REQUESTS"] = str(10**12)
        return env

    def ceiling_env(self, token: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTDESK_", "BENCH_"))}
        return {**env, "BENCH_CEILING_DB": self.ceiling_db, "BENCH_CEILING_TOKEN": token}


def _pg_up() -> bool:
    async def ping() -> None:
        conn = await asyncpg.connect(PG_SERVER + "/postgres", timeout=3)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def ensure_postgres() -> str | None:
    """None when the cluster answers (starting it if needed), else why it cannot be used."""
    if _pg_up():
        return None
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        return "no PostgreSQL cluster is installed (/etc/postgresql is empty)"
    print(f"  PostgreSQL is down; starting cluster {versions[-1]}/main")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
    )
    for _ in range(30):
        if _pg_up():
            return None
        time.sleep(1)
    return f"PostgreSQL at {PG_SERVER} does not answer"


async def _recreate_pg_database(drop_only: bool = False) -> None:
    conn = await asyncpg.connect(PG_SERVER + "/postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        if not drop_only:
            await conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    finally:
        await conn.close()


@contextlib.contextmanager
def prepared(name: str, workers: int, workdir: Path) -> Iterator[Engine]:
    """A freshly created, migrated and seeded engine; its database is dropped afterwards."""
    data_dir = workdir / f"data-{name}"
    data_dir.mkdir(parents=True, exist_ok=True)
    if name == "sqlite":
        engine = Engine(name, workers, data_dir, "", f"sqlite:///{workdir / 'ceiling.db'}")
        ceiling.prepare_sqlite(str(workdir / "ceiling.db"))
    else:
        url = f"{PG_SERVER}/{PG_DATABASE}"
        engine = Engine(name, workers, data_dir, url, url)
        asyncio.run(_recreate_pg_database())
    try:
        if name == "postgresql":
            asyncio.run(ceiling.prepare_postgres(engine.ceiling_db))
        seed(engine)
        yield engine
    finally:
        if name == "postgresql":
            asyncio.run(_recreate_pg_database(drop_only=True))


def seed(engine: Engine) -> dict[str, Any]:
    """`frontdesk demo --json`: migrates, then loads the demo extension and account."""
    done = subprocess.run(
        [str(VENV_BIN / "frontdesk"), "demo", "--json"],
        env=engine.app_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"frontdesk demo failed:\n{done.stdout}\n{done.stderr}")
    credentials: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if [credentials["extension"][k] for k in ("client_id", "secret")] != list(DEMO_LOGIN):
        raise RuntimeError(f"unexpected demo credentials: {credentials}")
    return credentials


async def _token(session: aiohttp.ClientSession, url: str, api: str = "v1") -> str:
    """The demo extension's token (API v1), or the demo agent's (API v4); none for Planfix,
    whose key travels in the body."""
    if api == "planfix":
        return ""
    if api == "v1":
        path, login = "/v1/token", {"client_id": DEMO_LOGIN[0], "secret": DEMO_LOGIN[1]}
    else:
        path, login = "/v4/auth", {"login": DEMO_AGENT[0], "security_key": DEMO_AGENT[1]}
    async with session.post(url + path, json=login) as response:
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {await response.text()}")
        return str((await response.json())["access_token"])


async def _open_keys(url: str, workload: Workload, count: int) -> str:
    """A token, and one request with each of `count` existing keys so that they exist."""
    async with aiohttp.ClientSession() as session:
        token = await _token(session, url, workload.api)
        headers = {"Content-Type": workload.content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        semaphore = asyncio.Semaphore(16)

        async def send(n: int) -> None:
            async with semaphore:
                body = workload.body_for(f"{EXISTING_PREFIX}{n}")
                target = url + workload.path
                async with session.post(target, data=body, headers=headers) as response:
                    text = await response.text()
                    if response.status != 200 or workload.ok_marker not in text:
                        raise RuntimeError(
                            f"pre-creating {workload.name} key {n}: {response.status} {text}"
                        )

        await asyncio.gather(*(send(n) for n in range(count)))
        return token


def prepared_token(url: str, workload: Workload, count: int) -> str:
    """A token for the workload, once `count` existing keys (channels, calls) are made."""
    return asyncio.run(_open_keys(url, workload, count))


def analyze(engine: Engine) -> None:
    """Bring the planner's statistics up to date after the keys were made, as autovacuum
    keeps them on a server that has run a while: the thousands of rows just written would
    otherwise be planned as the empty tables they were (on PostgreSQL a plan made then
    scans every call of the account for one external_id)."""
    if not engine.database_url.startswith("postgresql"):
        return

    async def run() -> None:
        conn = await asyncpg.connect(engine.database_url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(run())


def get_token(url: str) -> str:
    async def fetch() -> str:
        async with aiohttp.ClientSession() as session:
            return await _token(session, url)

    return asyncio.run(fetch())
