"""POST /v4/files/upload; GET /v4/files/download/{id}, /files/download/{id} and
/services/attachment?Id={id}: who may download what, and every error code.

What an upload does alike on v1 (its answer, its bytes back, the errors of its body) is tested
once over both APIs in test_v1_files.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access, extensions, files, forms, users
from frontdesk.core.comments import Formatted, NewComment, add_comment
from frontdesk.core.maintenance import sweep
from frontdesk.core.tasks import create_task
from frontdesk.storage import tables
from frontdesk.storage.sql import Query

from factories import (
    FIELDS,
    db_of,
    expired_v4_headers,
    file_id_of,
    make_connector,
    make_v4_agent,
    rows,
    upload,
    upload_v4,
)

#: the three ways Pyrus' clients ask for a file (spec.md §4.4)
DOWNLOADS = ["/v4/files/download/{}", "/files/download/{}", "/services/attachment?Id={}"]


async def task_showing(client, file_id: int, *, form_id: int | None = None) -> int:
    """A task with a comment that has the file attached."""

    async def work(tx):
        task_id = await create_task(tx, form_id=form_id)
        await add_comment(tx, NewComment(task_id, Formatted("see attached"), file_ids=[file_id]))
        return task_id

    return await db_of(client).write(work)


async def restricted_form(client, *member_ids: int) -> int:
    db = db_of(client)
    form_id = await db.write(forms.add_form, "Restricted", FIELDS)
    await db.write(access.add_form_members, form_id, list(member_ids))
    return form_id


# --- upload -------------------------------------------------------------------------------


async def test_upload_is_recorded_as_the_users_not_an_extensions(client):
    agent = await make_v4_agent(client)
    guid = await upload_v4(client, agent, "a.txt", b"abc")
    f = tables.files.c
    [row] = await rows(
        client, sa.select(f.user_id, f.extension_id, f.size).where(f.guid == p("g")), g=guid
    )
    assert row == {"user_id": agent.user_id, "extension_id": None, "size": 3}


def stored_files(settings) -> list:
    return [path for path in settings.effective_files_dir.rglob("*") if path.is_file()]


# --- tokens -------------------------------------------------------------------------------

ROUTES = [("POST", "/v4/files/upload"), *[("GET", path.format(1)) for path in DOWNLOADS]]


async def _send(client, method: str, path: str, headers: dict[str, str]):
    if method == "POST":
        return await client.post(path, headers=headers, files={"file": ("a.txt", b"x")})
    return await client.get(path, headers=headers)


@pytest.mark.parametrize("method, path", ROUTES)
@pytest.mark.parametrize(
    "token, code",
    [
        (None, "token_not_specified"),
        ("not-a-token", "invalid_token"),
        ("expired", "expired_token"),
        ("revoked", "revoked_token"),
    ],
)
async def test_every_route_refuses_bad_tokens(client, settings, method, path, token, code):
    agent = await make_v4_agent(client)
    await upload_v4(client, agent)  # file 1: the agent's own, so only the token can fail
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if token == "expired":
        headers = await expired_v4_headers(client, agent)
    elif token == "revoked":
        headers = agent.headers
        await db_of(client).write(users.rotate_security_key, agent.user_id)
    before = stored_files(settings)
    response = await _send(client, method, path, headers)
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == code
    assert stored_files(settings) == before


@pytest.mark.parametrize("api", ["v1", "v4"])
async def test_a_token_revoked_while_the_body_comes_in_gets_no_file(client, settings, api):
    """The token is checked before the body and again in the unit that records the file:
    a rotation in between refuses the file and leaves no bytes behind."""
    if api == "v1":
        connector = await make_connector(client)
        headers, path = connector.headers, "/v1/files/upload"
        rotate = (extensions.rotate_secret, connector.extension_id)
    else:
        agent = await make_v4_agent(client)
        headers, path = agent.headers, "/v4/files/upload"
        rotate = (users.rotate_security_key, agent.user_id)
    boundary = "rotation-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
    ).encode()

    async def body():
        yield head + b"first half "
        await db_of(client).write(*rotate)  # the rotation commits mid-body
        yield b"second half" + f"\r\n--{boundary}--\r\n".encode()

    content_type = f"multipart/form-data; boundary={boundary}"
    response = await client.post(
        path, headers={**headers, "Content-Type": content_type}, content=body()
    )
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == "revoked_token"
    assert await rows(client, sa.select(tables.files.c.guid)) == []
    assert stored_files(settings) == []


async def test_extension_tokens_are_not_user_tokens(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v4/files/upload", headers=connector.headers, files={"file": ("a.txt", b"x")}
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "invalid_token"


# --- ids that are no file -----------------------------------------------------------------


@pytest.mark.parametrize("path", DOWNLOADS)
@pytest.mark.parametrize(
    "file_id",
    [
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "abc",
        "-1",
        "1e3",
        "0x1",
        " 1",
        "%D9%A1",  # ARABIC-INDIC DIGIT ONE: a digit, but not an id
        "%EF%BC%91",  # FULLWIDTH DIGIT ONE
        "99999999999999999999",
        "9223372036854775807",
        "2",
    ],
)
async def test_ids_that_are_no_file_are_not_found(client, path, file_id):
    agent = await make_v4_agent(client)
    await upload_v4(client, agent, "passwd", b"root:x:0:0")  # file 1 exists
    response = await client.get(path.format(file_id), headers=agent.headers)
    assert response.status_code == 404, response.text
    assert response.json()["error_code"] == "file_is_missing"
    assert "root:" not in response.text


async def test_attachment_without_an_id_is_not_found(client):
    agent = await make_v4_agent(client)
    for query in ("", "?Id=", "?File=1"):
        response = await client.get(f"/services/attachment{query}", headers=agent.headers)
        assert response.status_code == 404
        assert response.json()["error_code"] == "file_is_missing"


# --- who may download ---------------------------------------------------------------------


@pytest.mark.parametrize("path", DOWNLOADS)
async def test_another_users_upload_is_not_found(client, path):
    owner = await make_v4_agent(client, email="owner@example.com")
    other = await make_v4_agent(client, email="other@example.com")
    file_id = await file_id_of(client, await upload_v4(client, owner, "mine.txt", b"private"))
    response = await client.get(path.format(file_id), headers=other.headers)
    assert response.status_code == 404
    assert response.json()["error_code"] == "file_is_missing"
    assert "private" not in response.text


@pytest.mark.parametrize("path", DOWNLOADS)
async def test_a_file_attached_in_a_task_downloads_for_whoever_may_see_the_task(client, path):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com")
    carl = await make_v4_agent(client, email="carl@example.com")
    file_id = await file_id_of(client, await upload_v4(client, bob, "answer.txt", b"shared"))
    assert (await client.get(path.format(file_id), headers=ann.headers)).status_code == 404

    await task_showing(client, file_id, form_id=await restricted_form(client, ann.user_id))
    seen = await client.get(path.format(file_id), headers=ann.headers)
    assert seen.status_code == 200 and seen.content == b"shared"
    hidden = await client.get(path.format(file_id), headers=carl.headers)
    assert hidden.status_code == 404

    await task_showing(client, file_id)  # a task without a form is open to every agent
    assert (await client.get(path.format(file_id), headers=carl.headers)).status_code == 200


async def test_a_call_recording_downloads_for_whoever_may_see_the_calls_task(client):
    connector = await make_connector(client)
    ann = await make_v4_agent(client, email="ann@example.com")
    carl = await make_v4_agent(client, email="carl@example.com")
    await db_of(client).write(access.add_form_members, connector.form_id, [ann.user_id])
    registered = await client.post(
        "/v1/call",
        headers=connector.headers,
        json={"account_id": connector.account_id, "from_number": "+100", "to_number": "+200"},
    )
    assert registered.status_code == 200, registered.text
    guid = await upload(client, connector, "record.mp3", b"ID3 recording")
    file_id = await file_id_of(client, guid)
    url = f"/services/attachment?Id={file_id}"
    # the extension's upload: no user may have it until a task shows it
    assert (await client.get(url, headers=ann.headers)).status_code == 404

    # the recording alone, without the comment /attachcallrecord also writes
    calls = tables.calls.c
    set_record = Query(sa.update(tables.calls).values(record_file_id=p("file_id")))

    async def attach_record(tx):
        await tx.run(set_record, file_id=file_id)

    await db_of(client).write(attach_record)
    assert await rows(client, sa.select(calls.record_file_id)) == [{"record_file_id": file_id}]
    heard = await client.get(url, headers=ann.headers)
    assert heard.status_code == 200 and heard.content == b"ID3 recording"
    assert (await client.get(url, headers=carl.headers)).status_code == 404


async def test_an_extension_cannot_download_a_users_upload(client):
    agent = await make_v4_agent(client)
    connector = await make_connector(client)
    file_id = await file_id_of(client, await upload_v4(client, agent, "mine.txt", b"private"))
    response = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    assert response.status_code == 404


# --- a user's uploads in the core: attaching by guid, the sweep ---------------------------


async def test_resolve_user_guids_finds_only_the_users_own_uploads(client):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com")
    connector = await make_connector(client)
    mine = await upload_v4(client, ann, "mine.txt", b"1")
    bobs = await upload_v4(client, bob, "bobs.txt", b"2")
    extensions = await upload(client, connector, "ext.txt", b"3")
    resolved = await db_of(client).read(
        files.resolve_user_guids,
        ann.user_id,
        [mine, f" {mine.upper()} ", bobs, extensions, "not-a-guid"],
    )
    assert resolved.ids == [await file_id_of(client, mine)]
    assert resolved.unknown == [bobs, extensions, "not-a-guid"]


async def test_unattached_user_uploads_are_swept_and_attached_ones_kept(client):
    agent = await make_v4_agent(client)
    ctx = client.app.state.ctx
    kept = await upload_v4(client, agent, "kept.txt", b"kept")
    lost = await upload_v4(client, agent, "lost.txt", b"lost")
    await task_showing(client, await file_id_of(client, kept))

    assert (await sweep(ctx.db, ctx.blobs, timedelta(hours=1))).files == 0
    assert (await sweep(ctx.db, ctx.blobs, timedelta(seconds=0))).files == 1
    assert await ctx.db.read(files.user_file, agent.user_id, lost) is None
    assert not ctx.blobs.path(lost).exists()
    assert await ctx.db.read(files.user_file, agent.user_id, kept) is not None
    assert ctx.blobs.path(kept).exists()
