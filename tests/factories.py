"""Plain functions that make what tests need, through the core (never raw SQL), and read
what a request stored with SQLAlchemy selects run on the app's own database."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access, auth, extensions, files, forms, tasks, users
from frontdesk.core.forms import FieldSpec
from frontdesk.storage import tables
from frontdesk.storage.database import Database
from frontdesk.storage.sql import Query, Tx

FIELDS = (
    FieldSpec("Subject", "text"),
    FieldSpec("SenderName", "text"),
    FieldSpec("MessageType", "choice", choices=("Telegram", "VK", "WhatsApp")),
    FieldSpec("CallDuration", "number"),
    FieldSpec("CallStartTime", "datetime"),
    FieldSpec("Rating", "choice", choices=("1", "2", "3", "4", "5")),
    FieldSpec("RatingDate", "date"),
    FieldSpec("PhoneNumberFrom", "phone"),
)


@dataclass
class Connector:
    """An extension with one account on a form, and a valid access token."""

    db: Database
    extension_id: int
    client_id: str
    secret: str
    account_id: str
    account_ref: int
    form_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def db_of(client: Any) -> Database:
    db: Database = client.app.state.ctx.db
    return db


async def make_connector(
    client: Any,
    *,
    account_id: str = "acc-1",
    routing: str = "reuse_open",
    fields: tuple[FieldSpec, ...] = FIELDS,
    name: str = "Test connector",
    base_url: str | None = None,
) -> Connector:
    db = db_of(client)
    form_id = await db.write(forms.add_form, "Requests", fields)
    extension = await db.write(extensions.add_extension, name, base_url)
    account = await db.write(
        extensions.add_account, extension.extension_id, account_id, form_id, routing=routing
    )
    issued = await db.write(
        auth.issue_extension_token, extension.client_id, extension.secret, timedelta(hours=1)
    )
    return Connector(
        db,
        extension.extension_id,
        extension.client_id,
        extension.secret,
        account_id,
        account.id,
        form_id,
        issued.token,
    )


async def add_account(
    connector: Connector, account_id: str, *, form_id: int | None = None, **options: Any
) -> int:
    account = await connector.db.write(
        extensions.add_account,
        connector.extension_id,
        account_id,
        form_id or connector.form_id,
        **options,
    )
    return account.id


async def make_agent(
    client: Any, *, email: str = "agent@example.com", work_phone: str | None = "200"
) -> users.NewUser:
    return await db_of(client).write(
        users.add_user, email, "Ilya", "Laserson", work_phone=work_phone, password="secret-pass"
    )


@dataclass
class Agent:
    """A user with an API v4 token."""

    user_id: int
    email: str
    security_key: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_v4_agent(
    client: Any, *, email: str = "agent@example.com", work_phone: str | None = "200"
) -> Agent:
    """An agent signed in through POST /v4/auth, as a v4 client would be."""
    new = await make_agent(client, email=email, work_phone=work_phone)
    response = await client.post(
        "/v4/auth", json={"login": new.email, "security_key": new.security_key}
    )
    assert response.status_code == 200, response.text
    return Agent(new.user_id, new.email, new.security_key, response.json()["access_token"])


async def upload(
    client: Any,
    connector: Connector,
    name: str = "photo.jpg",
    data: bytes = b"\xff\xd8 picture bytes",
) -> str:
    response = await client.post(
        "/v1/files/upload", headers=connector.headers, files={"file": (name, data)}
    )
    assert response.status_code == 200, response.text
    guid: str = response.json()["guid"]
    return guid


# --- reading what a request stored (through the app's own database) -----------------------


async def rows(client: Any, statement: Any, **params: Any) -> list[dict[str, Any]]:
    """Every row a SQLAlchemy select returns, read through the app's database."""
    query = Query(statement)

    async def work(tx: Tx) -> list[dict[str, Any]]:
        return await tx.all(query, **params)

    return await db_of(client).read(work)


async def tasks_of(client: Any) -> list[dict[str, Any]]:
    """All tasks, oldest first."""
    return await rows(client, sa.select(tables.tasks).order_by(tables.tasks.c.id))


async def task_of(client: Any, task_id: int) -> dict[str, Any]:
    found = await rows(
        client, sa.select(tables.tasks).where(tables.tasks.c.id == p("id")), id=task_id
    )
    assert found, f"no task {task_id}"
    return found[0]


async def comments_of(client: Any, task_id: int) -> list[dict[str, Any]]:
    """A task's comments, oldest first."""
    c = tables.comments.c
    return await rows(
        client,
        sa.select(tables.comments).where(c.task_id == p("task_id")).order_by(c.id),
        task_id=task_id,
    )


async def attachments_of(client: Any, comment_id: int) -> list[str]:
    """The guids of a comment's files, in their order."""
    a, f = tables.attachments.c, tables.files.c
    found = await rows(
        client,
        sa.select(f.guid)
        .join(tables.attachments, a.file_id == f.id)
        .where(a.comment_id == p("comment_id"))
        .order_by(a.position),
        comment_id=comment_id,
    )
    return [row["guid"] for row in found]


async def values_of(client: Any, task_id: int) -> dict[str, str]:
    """A task's field values by field code."""
    v, f = tables.task_values.c, tables.form_fields.c
    found = await rows(
        client,
        sa.select(f.code, v.value)
        .join(tables.form_fields, f.id == v.field_id)
        .where(v.task_id == p("task_id")),
        task_id=task_id,
    )
    return {row["code"]: row["value"] for row in found}


async def channels_of(client: Any) -> list[dict[str, Any]]:
    return await rows(client, sa.select(tables.channels).order_by(tables.channels.c.id))


async def calls_of(client: Any) -> list[dict[str, Any]]:
    return await rows(client, sa.select(tables.calls).order_by(tables.calls.c.id))


async def file_id_of(client: Any, guid: str) -> int:
    found = await rows(
        client, sa.select(tables.files.c.id).where(tables.files.c.guid == p("guid")), guid=guid
    )
    assert found, f"no file {guid}"
    return int(found[0]["id"])


# --- changing state the way an agent or an admin would ------------------------------------


async def close_task(client: Any, task_id: int) -> None:
    await db_of(client).write(tasks.close, task_id)


async def set_enabled(connector: Connector, enabled: bool, account_id: str | None = None) -> None:
    await connector.db.write(
        extensions.set_account_enabled,
        connector.extension_id,
        account_id or connector.account_id,
        enabled,
    )


async def add_account_on_new_form(connector: Connector, account_id: str) -> int:
    """Another account of the same extension, on a form of its own; returns the form id."""
    form_id = await connector.db.write(forms.add_form, "Other requests", FIELDS)
    await connector.db.write(extensions.add_account, connector.extension_id, account_id, form_id)
    return form_id


def nulls_in(payload: Any, path: str = "$") -> list[str]:
    """Where a JSON answer holds a null (Pyrus omits empty fields instead)."""
    if payload is None:
        return [path]
    if isinstance(payload, dict):
        return [n for key, value in payload.items() for n in nulls_in(value, f"{path}.{key}")]
    if isinstance(payload, list):
        return [n for i, value in enumerate(payload) for n in nulls_in(value, f"{path}[{i}]")]
    return []


# --- API v4 files (users' uploads) --------------------------------------------------------


async def upload_v4(
    client: Any, agent: Agent, name: str = "photo.jpg", data: bytes = b"\xff\xd8 picture bytes"
) -> str:
    """A file uploaded by an agent through POST /v4/files/upload; returns its guid."""
    response = await client.post(
        "/v4/files/upload", headers=agent.headers, files={"file": (name, data)}
    )
    assert response.status_code == 200, response.text
    guid: str = response.json()["guid"]
    return guid


async def expired_v4_headers(client: Any, agent: Agent) -> dict[str, str]:
    """Headers with a token of the agent's that expired a minute ago."""
    issued = await db_of(client).write(
        auth.issue_user_token, agent.email, agent.security_key, timedelta(minutes=-1)
    )
    return {"Authorization": f"Bearer {issued.token}"}


# --- API v4 telephony ---------------------------------------------------------------------

#: a form with every telephony field code of the v4 document, with the document's types
TELEPHONY_FIELDS = (
    FieldSpec("Subject", "text"),
    FieldSpec("CallDuration", "number"),
    FieldSpec("CallEndTime", "datetime"),
    FieldSpec("CallStartTime", "datetime"),
    FieldSpec("PhoneNumberFrom", "phone"),
    FieldSpec("PhoneNumberTo", "phone"),
    FieldSpec("Rating", "choice", choices=("1", "2", "3", "4", "5")),
    FieldSpec("RatingComment", "text"),
    FieldSpec("RatingDate", "date"),
)


async def user_file(client: Any, user_id: int, name: str = "rec.wav") -> str:
    """A file row uploaded by a user (as /v4/files/upload records one); returns its guid.

    Written through the core, without bytes: attaching a recording reads only the row."""
    guid = str(uuid.uuid4())
    await db_of(client).write(
        files.register_file,
        guid=guid,
        name=name,
        size=4,
        md5="0" * 32,
        content_type="audio/x-wav",
        user_id=user_id,
    )
    return guid


async def recording_comments(client: Any, task_id: int) -> list[dict[str, Any]]:
    """The comments of a task that carry a call's recording."""
    return [c for c in await comments_of(client, task_id) if c["text"] == "Call recording"]


async def assert_attached(client: Any, task_id: int, guid: str) -> None:
    """The call's record is the file, and one comment in its task carries it."""
    [stored] = [c for c in await calls_of(client) if c["task_id"] == task_id]
    assert stored["record_file_id"] == await file_id_of(client, guid)
    [comment] = await recording_comments(client, task_id)
    assert await attachments_of(client, comment["id"]) == [guid]
    # in the call's own conversation: shown as the telephone channel, as the call is
    call_comment = (await comments_of(client, task_id))[0]
    assert comment["channel_id"] == call_comment["channel_id"] is not None


async def assert_not_attached(client: Any, task_id: int) -> None:
    """No call has a record, and the task no recording's comment."""
    assert all(c["record_file_id"] is None for c in await calls_of(client))
    assert await recording_comments(client, task_id) == []


# --- one behaviour, tested once over API v1 and API v4 ------------------------------------

#: the two APIs a behaviour both share is tested over
APIS = ("v1", "v4")

#: a method's path on each API that has it
API_PATHS = {
    "upload": {"v1": "/v1/files/upload", "v4": "/v4/files/upload"},
    "download": {"v1": "/v1/files/download/{}", "v4": "/v4/files/download/{}"},
    "call": {"v1": "/v1/call", "v4": "/v4/integrations/call"},
    "attachcallrecord": {"v1": "/v1/attachcallrecord", "v4": "/v4/integrations/attachcallrecord"},
    "getmessage": {"v1": "/v1/getmessage"},
}


@dataclass
class Caller:
    """Who sends a test's requests through one API: on v1 the connector's extension, on v4 a
    user signed in (`user_id`); either reaches the connector's account."""

    api: str
    connector: Connector
    headers: dict[str, str]
    user_id: int | None = None

    def path(self, method: str) -> str:
        """The method's path on this caller's API (see API_PATHS)."""
        return API_PATHS[method][self.api]

    def landed(self, response: httpx.Response) -> tuple[int, bool]:
        """(task_id, is_new_task) of a call registered: v1 answers tasks[], v4 the one task."""
        assert response.status_code == 200, response.text
        body = response.json()
        if self.api == "v1":
            [body] = body["tasks"]
        assert "tasks" not in body
        return body["task_id"], body["is_new_task"]


async def make_caller(client: Any, api: str, **connector_options: Any) -> Caller:
    """A connector (made with these options), and who calls `api` on its account: its
    extension on v1, a user signed in through POST /v4/auth on v4."""
    connector = await make_connector(client, **connector_options)
    if api == "v1":
        return Caller(api, connector, connector.headers)
    agent = await make_v4_agent(client)
    return Caller(api, connector, agent.headers, agent.user_id)


# --- a real server process ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"frontdesk serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("frontdesk serve did not become healthy in 60 s")


def start_server(
    database_url: str, workdir: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`frontdesk serve [options]` as a real process on a free port, once healthy.

    Its data directory is `workdir/var`; its output is appended to `workdir/serve.log`."""
    port = free_port()
    environment = {
        **os.environ,
        "FRONTDESK_DATABASE_URL": database_url,
        "FRONTDESK_DATA_DIR": str(workdir / "var"),
        **(env or {}),
    }
    log = workdir / "serve.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "frontdesk", "serve", *options, "--port", str(port)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process, log)
    except BaseException:
        stop_server(process, signal.SIGKILL)
        raise
    return process, base


def stop_server(process: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    """Stop it by its own process group (never by name); SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=15)
    except ProcessLookupError:  # it exited already (its group with it)
        pass
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def served(
    database_url: str, workdir: Path, *options: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`frontdesk serve [options]` for the length of the block; yields its base URL."""
    process, base = start_server(database_url, workdir, *options, env=env)
    try:
        yield base
    finally:
        stop_server(process)


# --- API v4 forms and tasks ---------------------------------------------------------------


async def make_form(
    client: Any,
    name: str = "Requests",
    fields: tuple[FieldSpec, ...] = FIELDS,
    *,
    members: tuple[int, ...] = (),
) -> int:
    """A form; with members, it is open to them only (API v4 access rules)."""
    db = db_of(client)
    form_id = await db.write(forms.add_form, name, fields)
    if members:
        await db.write(access.add_form_members, form_id, list(members))
    return form_id


async def v4_task(client: Any, agent: Agent, **body: Any) -> dict[str, Any]:
    """A task made through POST /v4/tasks; returns it as the answer shows it."""
    response = await client.post("/v4/tasks", headers=agent.headers, json=body)
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()["task"]
    return task


# --- Planfix chat API ---------------------------------------------------------------------

#: the seed's sample key (seeds/planfix-webchat-api.txt)
PLANFIX_TOKEN = "303cb962ac59075b964b07152d234b70"
#: the key the seed's outbound sample carries: the chat system's own
PROVIDER_TOKEN = "202cb962ac59075b964b07152d234b70"


@dataclass
class PlanfixProvider:
    """A Planfix chat integration and the keys both sides use."""

    integration_id: int
    provider_id: str
    planfix_token: str
    provider_token: str
    form_id: int


async def make_planfix(
    client: Any,
    *,
    provider_id: str = "superchat",
    url: str | None = None,
    planfix_token: str = PLANFIX_TOKEN,
    fields: tuple[FieldSpec, ...] = FIELDS,
    routing: str = "reuse_open",
    default_agent: str | None = None,
) -> PlanfixProvider:
    from frontdesk.core import planfix

    db = db_of(client)
    form_id = await db.write(forms.add_form, "Chats", fields)
    new = await db.write(
        planfix.add_integration,
        provider_id,
        url,
        PROVIDER_TOKEN,
        form_id=form_id,
        default_agent_email=default_agent,
        routing=routing,
        planfix_token=planfix_token,
    )
    return PlanfixProvider(
        new.integration_id, provider_id, new.planfix_token, PROVIDER_TOKEN, form_id
    )


async def planfix_call(client: Any, body: Any, path: str = "/webchat/api") -> httpx.Response:
    """POST a form-urlencoded body: a dict, a list of pairs (repeats kept), or the raw text."""
    from urllib.parse import urlencode

    text = body if isinstance(body, str) else urlencode(body)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response: httpx.Response = await client.post(path, content=text.encode(), headers=headers)
    return response


async def fetches_of(client: Any) -> list[dict[str, Any]]:
    """Every attachment fetch job, oldest first."""
    table = tables.attachment_fetches
    return await rows(client, sa.select(table).order_by(table.c.id))


@contextlib.asynccontextmanager
async def app_client(settings: Any) -> Any:
    """The real app with settings of the test's own, served like the `client` fixture's."""
    from conftest import running
    from frontdesk.app import create_app

    app = create_app(settings)
    async with running(app.litestar):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://frontdesk.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


def planfix_seed_sample(command: str) -> tuple[str, list[tuple[str, str]]]:
    """The Planfix document's sample call of a command (the first shown): path and fields."""
    from urllib.parse import urlsplit

    seed = Path(__file__).parent / "fixtures" / "seeds" / "planfix-webchat-api.txt"
    lines = seed.read_text().splitlines()
    start = lines.index(f"cmd={command}")
    url = next(line for line in reversed(lines[:start]) if line.startswith("POST "))
    fields = []
    for line in lines[start:]:
        if not line.strip():
            break
        key, _, value = line.partition("=")
        fields.append((key, value))
    return urlsplit(url.split()[1]).path, fields


class WatchedDatabase:
    """A test's database, every unit of work passed through and noted (the unit's function
    and its arguments) in `reads` or `writes`; `before_write(work)`, if given, runs before
    each write (to delay it, or fail it)."""

    def __init__(self, db: Any, before_write: Any = None) -> None:
        self.db, self.dialect, self.memo = db, db.dialect, db.memo
        self.reads: list[tuple[Any, tuple[Any, ...]]] = []
        self.writes: list[tuple[Any, tuple[Any, ...]]] = []
        self._before_write = before_write

    async def read(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        self.reads.append((work, args))
        return await self.db.read(work, *args, **kwargs)

    async def write(self, work: Any, *args: Any, **kwargs: Any) -> Any:
        self.writes.append((work, args))
        if self._before_write is not None:
            await self._before_write(work)
        return await self.db.write(work, *args, **kwargs)

    def count(self, calls: list[tuple[Any, tuple[Any, ...]]], work: Any) -> int:
        """How many of these calls ran `work`."""
        return sum(1 for done, _ in calls if done is work)
