"""Pyrus' own Python clients, unchanged but for the host they are pointed at, against a real
`frontdesk serve` process: pyrus-api 2.50.0 (the official client) and aiopyrus 0.10.1.

Users are made through the core before the server starts; a client learns a file's numeric id
from a task in real life, so the tests read it from the database by the guid the upload gave.
"""

from __future__ import annotations

import hashlib
import http.client
import json
from urllib.parse import urlsplit

import httpx
import pytest
from aiopyrus import UserClient
from pyrus import client as pyrus_client

from frontdesk.core import files, users
from frontdesk.storage.database import open_database

from factories import served

# pyrus-api's own habits, not ours: its jsonpickle warns about its next version, and
# upload_file opens the file without closing it
pytestmark = [
    pytest.mark.filterwarnings("ignore:keys will default to True:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

#: bytes that are no text: every byte value, so nothing is decoded or re-encoded on the way
DATA = bytes(range(256)) * 300


@pytest.fixture
async def people(database_url) -> dict[str, users.NewUser]:
    db = await open_database(database_url)
    try:
        ann = await db.write(users.add_user, "ann@example.com", "Ann", "Lee", work_phone="201")
        bob = await db.write(users.add_user, "bob@example.com", "Bob", "Stone")
    finally:
        await db.close()
    return {"ann": ann, "bob": bob}


@pytest.fixture
def server(people, database_url, tmp_path):
    with served(database_url, tmp_path) as base:
        yield base


async def file_id_of(database_url: str, user_id: int, guid: str) -> int:
    db = await open_database(database_url)
    try:
        stored = await db.read(files.user_file, user_id, guid)
    finally:
        await db.close()
    assert stored is not None, f"no file {guid} of user {user_id}"
    return stored.id


def official_client(server: str, user: users.NewUser) -> pyrus_client.PyrusAPI:
    """pyrus-api, told our host the only way it allows: its protocol and host attributes."""
    api = pyrus_client.PyrusAPI(login=user.email, security_key=user.security_key)
    api._protocol = "http"
    api._host = urlsplit(server).netloc
    return api


async def test_official_client_auth_profile_and_members(server, people):
    ann, bob = people["ann"], people["bob"]
    api = official_client(server, ann)
    auth = api.auth()
    assert auth.error_code is None and auth.access_token
    assert (auth.api_url, auth.files_url) == (f"{server}/v4/", f"{server}/")

    profile = api.get_profile()
    assert profile.error_code is None, profile.original_response
    assert (profile.person_id, profile.first_name, profile.last_name, profile.email) == (
        ann.user_id,
        "Ann",
        "Lee",
        "ann@example.com",
    )
    assert (profile.locale, profile.organization_id) == ("en-US", 1)
    assert (profile.organization.organization_id, profile.organization.name) == (1, "Frontdesk")
    assert [person.id for person in profile.organization.persons] == [ann.user_id, bob.user_id]

    listed = api.get_members()
    assert [(m.id, m.first_name, m.email, m.type, m.phone) for m in listed.members] == [
        (ann.user_id, "Ann", "ann@example.com", "user", "201"),
        (bob.user_id, "Bob", "bob@example.com", "user", None),
    ]
    member = api.get_member(bob.user_id)
    assert (member.error_code, member.id, member.last_name, member.type) == (
        None,
        bob.user_id,
        "Stone",
        "user",
    )
    assert api.get_member(bob.user_id + 1000).error_code == "not_found"


async def test_official_client_uploads_and_downloads(server, people, database_url, tmp_path):
    ann, bob = people["ann"], people["bob"]
    # an ASCII name: for others the client reads the ASCII fallback `filename`, not `filename*`
    path = tmp_path / "call record 1.bin"
    path.write_bytes(DATA)
    api = official_client(server, ann)
    uploaded = api.upload_file(str(path))
    assert uploaded.error_code is None, uploaded.original_response
    assert uploaded.md5_hash == hashlib.md5(DATA).hexdigest()

    file_id = await file_id_of(database_url, ann.user_id, uploaded.guid)
    downloaded = api.download_file(file_id)  # {files_url}services/attachment?Id=
    assert downloaded.error_code is None
    assert downloaded.raw_file == DATA
    assert downloaded.filename == "call record 1.bin"
    assert api.download_file(file_id + 1000).error_code == "access_denied_file"
    # Bob may not see Ann's upload: the client reports it as it reports a 404
    assert official_client(server, bob).download_file(file_id).error_code == "access_denied_file"


async def test_aiopyrus_auth_profile_members_and_files(server, people, database_url):
    ann, bob = people["ann"], people["bob"]
    async with UserClient(
        ann.email,
        ann.security_key,
        auth_url=f"{server}/v4/auth",
        api_url=f"{server}/v4/",
    ) as api:
        assert await api.auth()
        profile = await api.get_profile()
        assert (profile.person_id, profile.email, profile.organization_id) == (
            ann.user_id,
            "ann@example.com",
            1,
        )
        assert profile.organization is not None and profile.organization.name == "Frontdesk"
        assert [m.id for m in await api.get_members()] == [ann.user_id, bob.user_id]
        assert (await api.get_member(bob.user_id)).full_name == "Bob Stone"
        assert await api.find_member(bob.user_id + 1000) is None  # reads our 404 as "nobody"

        uploaded = await api.upload_file(DATA, filename="rec.wav")  # {api_url}files/upload
        assert uploaded.md5_hash == hashlib.md5(DATA).hexdigest()
        file_id = await file_id_of(database_url, ann.user_id, uploaded.guid)
        # {files_url}files/download/{id}
        assert await api.download_file(str(file_id)) == DATA
        with pytest.raises(httpx.HTTPStatusError) as missing:
            await api.download_file(str(file_id + 1000))
        assert missing.value.response.status_code == 404


@pytest.mark.parametrize(
    "raw_path",
    [
        "/files/download/../../etc/passwd",
        "/v4/files/download/../../../etc/passwd",
        "/v4/files/download/..%2F..%2Fetc%2Fpasswd",
        "/services/attachment?Id=../../etc/passwd",
        "/services/attachment?Id=%2e%2e%2fetc%2fpasswd",
    ],
)
async def test_traversal_in_the_raw_request_line_is_not_found(server, people, raw_path):
    """Sent byte for byte (no client normalises the dots away): the handler refuses them."""
    ann = people["ann"]
    token = httpx.post(
        f"{server}/v4/auth", json={"login": ann.email, "security_key": ann.security_key}
    ).json()["access_token"]
    connection = http.client.HTTPConnection(urlsplit(server).netloc, timeout=10)
    try:
        connection.request("GET", raw_path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert status == 404
    assert json.loads(body)["error_code"] == "file_is_missing"
    assert b"root:" not in body
