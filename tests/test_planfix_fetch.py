"""Attachments named by URL are fetched in the background from a real local HTTP server: into
the file store and onto the comment, or, when they cannot be (too large, hanging, refused by
the private-address guard, gone), left as their URL in the comment's text."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
from aiohttp import web

from frontdesk.core import attachment_fetches
from frontdesk.delivery.fetcher import AttachmentFetcher
from frontdesk.delivery.http import Outbound
from frontdesk.errors import FrontdeskError

from factories import (
    PLANFIX_TOKEN,
    app_client,
    attachments_of,
    comments_of,
    db_of,
    fetches_of,
    make_planfix,
    make_v4_agent,
    planfix_call,
)

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
CAP = 4096


class FileServer:
    """Serves files the way the internet does, one path per behaviour; logs every request."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.stopping = asyncio.Event()
        self.flaky_failures = 1
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        name = request.match_info["name"]
        if name == "photo.jpg":
            return web.Response(body=PHOTO, content_type="image/jpeg")
        if name == "big.bin":  # declares its size
            return web.Response(body=b"x" * (CAP + 1))
        if name == "endless.bin":  # declares nothing, and never stops
            return await self._stream_forever(request)
        if name == "hang.jpg":  # until the server stops
            await self.stopping.wait()
        if name == "flaky.jpg" and self.flaky_failures:
            self.flaky_failures -= 1
            return web.Response(status=503)
        if name == "flaky.jpg":
            return web.Response(body=PHOTO)
        if name == "moved.jpg":
            raise web.HTTPFound("/files/photo.jpg")
        return web.Response(status=404)

    async def _stream_forever(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        while not self.stopping.is_set():
            await response.write(b"y" * 1024)
            await asyncio.sleep(0)
        return response

    async def start(self) -> FileServer:
        app = web.Application()
        app.router.add_get("/files/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/files"
        return self

    async def stop(self) -> None:
        assert self._runner is not None
        self.stopping.set()
        await self._runner.cleanup()


@pytest.fixture
async def files_server():
    server = await FileServer().start()
    yield server
    await server.stop()


def fetcher(client, outbound, *, retry_delays=(0.05,)) -> AttachmentFetcher:
    return AttachmentFetcher(
        db_of(client),
        client.app.state.ctx.blobs,
        outbound,
        max_bytes=CAP,
        time_limit=0.5,
        retry_delays=retry_delays,
        poll_seconds=0.05,
    )


async def message_with(client, *files: tuple[str, str], chat_id: str = "chat-1") -> int:
    """A newMessage naming these (name, url) files; returns its task."""
    pairs = [
        ("cmd", "newMessage"),
        ("providerId", "superchat"),
        ("chatId", chat_id),
        ("planfix_token", PLANFIX_TOKEN),
        ("message", "See attached"),
    ]
    for name, url in files:
        pairs += [("attachments[name]", name), ("attachments[url]", url)]
    response = await planfix_call(client, pairs)
    assert response.status_code == 200, response.text
    return int(response.json()["number"])


def leftovers(client) -> list[str]:
    incoming = client.app.state.ctx.blobs.root / "incoming"
    return sorted(p.name for p in incoming.iterdir()) if incoming.is_dir() else []


async def test_a_file_is_fetched_onto_its_comment_after_the_message(client, files_server, outbound):
    await make_planfix(client)
    task_id = await message_with(
        client,
        ("photo.jpg", f"{files_server.url}/photo.jpg"),
        ("moved.jpg", f"{files_server.url}/moved.jpg"),
    )
    assert files_server.paths == []  # the message was taken without waiting for a download
    [job, _] = await fetches_of(client)
    assert job["status"] == "pending"

    await fetcher(client, outbound).drain()
    [comment] = await comments_of(client, task_id)
    guids = await attachments_of(client, comment["id"])
    assert len(guids) == 2 and comment["text"] == "See attached"
    blobs = client.app.state.ctx.blobs
    assert [blobs.path(guid).read_bytes() for guid in guids] == [PHOTO, PHOTO]
    done = await fetches_of(client)
    assert [(f["status"], f["attempts"]) for f in done] == [("done", 1), ("done", 1)]
    # an agent downloads it like any attachment, with its name, size and md5
    agent = await make_v4_agent(client)
    task = (await client.get(f"/v4/tasks/{task_id}", headers=agent.headers)).json()["task"]
    shown = task["comments"][0]["attachments"][0]
    assert (shown["name"], shown["size"], shown["md5"]) == (
        "photo.jpg",
        len(PHOTO),
        hashlib.md5(PHOTO).hexdigest(),
    )
    download = await client.get(f"/v4/files/download/{shown['id']}", headers=agent.headers)
    assert download.content == PHOTO


async def failed_note(client, task_id: int) -> str:
    [comment] = await comments_of(client, task_id)
    assert await attachments_of(client, comment["id"]) == []
    return str(comment["text"])


@pytest.mark.parametrize("name", ["big.bin", "endless.bin"])
async def test_a_file_over_the_cap_stays_a_link(client, files_server, outbound, name):
    await make_planfix(client)
    url = f"{files_server.url}/{name}"
    task_id = await message_with(client, (name, url))
    await fetcher(client, outbound).drain()
    [job] = await fetches_of(client)
    assert (job["status"], job["attempts"]) == ("failed", 1)  # too large is never retried
    assert str(CAP) in job["last_error"]
    note = await failed_note(client, task_id)
    assert note.startswith(f"See attached\n{name}: {url} (not downloaded: ")
    assert leftovers(client) == []  # no partial bytes kept


async def test_a_download_that_hangs_is_cut_off_at_the_time_limit(client, files_server, outbound):
    await make_planfix(client)
    url = f"{files_server.url}/hang.jpg"
    task_id = await message_with(client, ("hang.jpg", url))
    started = asyncio.get_running_loop().time()
    await fetcher(client, outbound).drain()
    assert asyncio.get_running_loop().time() - started < 5
    [job] = await fetches_of(client)
    # never retried: a second try would only hold the link back from the comment as long again
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "0.5 s" in job["last_error"]
    assert url in await failed_note(client, task_id)


async def test_a_server_slower_than_the_read_timeout_is_tried_again(client, files_server):
    await make_planfix(client)
    await message_with(client, ("hang.jpg", f"{files_server.url}/hang.jpg"))
    impatient = Outbound(connect_timeout=1.0, read_timeout=0.1, allow_private=True)
    try:  # the read times out (0.1 s) long before the whole download's limit (0.5 s)
        await fetcher(client, impatient).drain()
    finally:
        await impatient.close()
    [job] = await fetches_of(client)
    assert (job["status"], job["attempts"]) == ("failed", 2)
    assert "No answer within 0.1 s" in job["last_error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_guard_refuses_private_addresses(client, files_server, host):
    await make_planfix(client)
    url = files_server.url.replace("127.0.0.1", host) + "/photo.jpg"
    task_id = await message_with(client, ("photo.jpg", url))
    guarded = Outbound(connect_timeout=1.0, read_timeout=1.0, allow_private=False)
    try:
        await fetcher(client, guarded).drain()
    finally:
        await guarded.close()
    assert files_server.paths == []  # not one request reached it
    [job] = await fetches_of(client)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "public address" in job["last_error"]
    assert url in await failed_note(client, task_id)


async def test_a_passing_failure_is_retried_and_a_missing_file_is_not(
    client, files_server, outbound
):
    await make_planfix(client)
    await message_with(
        client,
        ("flaky.jpg", f"{files_server.url}/flaky.jpg"),
        ("gone.jpg", f"{files_server.url}/gone.jpg"),
    )
    await fetcher(client, outbound).drain()
    flaky, gone = await fetches_of(client)
    assert (flaky["status"], flaky["attempts"]) == ("done", 2)
    assert (gone["status"], gone["attempts"], gone["last_error"]) == ("failed", 1, "HTTP 404")


async def test_retries_run_out(client, files_server, outbound):
    files_server.flaky_failures = 5
    await make_planfix(client)
    await message_with(client, ("flaky.jpg", f"{files_server.url}/flaky.jpg"))
    await fetcher(client, outbound, retry_delays=(0.05, 0.05)).drain()
    [job] = await fetches_of(client)
    assert (job["status"], job["attempts"], job["last_error"]) == ("failed", 3, "HTTP 503")


async def test_a_job_whose_fetcher_died_is_fetched_again(client, files_server, outbound):
    await make_planfix(client)
    task_id = await message_with(client, ("photo.jpg", f"{files_server.url}/photo.jpg"))
    db = db_of(client)
    # a fetcher claims the job and dies before it finishes: its lease runs out
    [claimed] = await db.write(attachment_fetches.claim_due, 5, timedelta(milliseconds=50))
    assert await db.write(attachment_fetches.claim_due, 5, timedelta(seconds=60)) == []
    await asyncio.sleep(0.1)
    await fetcher(client, outbound).drain()
    [job] = await fetches_of(client)
    assert (job["status"], job["attempts"]) == ("done", 2)
    [comment] = await comments_of(client, task_id)
    assert len(await attachments_of(client, comment["id"])) == 1
    # the first fetcher, back from the dead, cannot record a second copy
    with pytest.raises(FrontdeskError, match="no longer held"):
        await db.write(attachment_fetches.give_up, claimed, "late")


async def test_the_server_fetches_in_the_background(settings, files_server):
    """`frontdesk serve` runs the fetcher itself (delivery.service)."""
    live = settings.model_copy(
        update={
            "delivery_in_process": True,
            "pulse_interval_seconds": 0,
            "delivery_poll_seconds": 0.05,
        }
    )
    async with app_client(live) as c:
        await make_planfix(c)
        await message_with(c, ("photo.jpg", f"{files_server.url}/photo.jpg"))
        for _ in range(100):
            if (await fetches_of(c))[0]["status"] == "done":
                break
            await asyncio.sleep(0.05)
        assert (await fetches_of(c))[0]["status"] == "done"


async def test_only_http_urls_are_fetched(client, outbound):
    await make_planfix(client)
    task_id = await message_with(client, ("passwd", "file:///etc/passwd"))
    await fetcher(client, outbound).drain()
    [job] = await fetches_of(client)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "Not an http(s) URL" in job["last_error"]
    assert "file:///etc/passwd" in await failed_note(client, task_id)


@pytest.mark.parametrize("url", ["http://2130706433:9/x.jpg", "http://127.1:9/", "http://0:9/"])
async def test_a_url_that_can_never_be_fetched_is_not_tried_again(client, outbound, url):
    await make_planfix(client)
    task_id = await message_with(client, ("x.jpg", url))
    await fetcher(client, outbound).drain()
    [job] = await fetches_of(client)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "Not a URL that can be fetched" in job["last_error"]
    assert url in await failed_note(client, task_id)
