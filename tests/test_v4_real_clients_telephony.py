"""A real Pyrus client, aiopyrus 0.10.1, unchanged against `frontdesk serve --demo` as a process.

Only its URLs point here. It registers a call (sending `from`/`to`, not the documented
names), reports it again, uploads recordings through /v4/files/upload and attaches them by
task id and by external id; then the test reads what Frontdesk stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from aiopyrus import UserClient
from aiopyrus.exceptions import PyrusAPIError
from aiopyrus.types.telephony import CallMapping, TelephonyMappingCode
from sqlalchemy import bindparam as p

from frontdesk.core import demo
from frontdesk.storage import tables

from factories import (
    attachments_of,
    calls_of,
    comments_of,
    file_id_of,
    rows,
    served,
    task_of,
    values_of,
)

FROM, TO = "+79774221338", "+74953009080"
WAV, MP3 = b"RIFF\x24\x00\x00\x00WAVEfmt demo", b"ID3\x03\x00 second take"


@pytest.fixture
def pyrus_url(client, database_url, tmp_path):
    """A served Frontdesk with the demo data (`client` is this test's view of its database)."""
    with served(database_url, tmp_path, "--demo") as base:
        yield base


def user_client(base: str) -> UserClient:
    return UserClient(
        demo.AGENT["email"],
        demo.AGENT["security_key"],
        auth_url=f"{base}/v4/auth",
        api_url=f"{base}/v4/",
    )


async def register_twice(pyrus: UserClient) -> int:
    """A new call, then the PBX reporting it again with more facts; the task id."""
    first = await pyrus.register_call(
        account_id=demo.ACCOUNT_ID,
        from_number=FROM,
        to_number=TO,
        internal_number="200",
        external_id="pbx-77",
        mappings=[
            CallMapping(
                code=TelephonyMappingCode.call_start_time,
                value=datetime(2021, 12, 23, 0, 11, 32, tzinfo=UTC),
            )
        ],
    )
    assert (first.is_new_task, first.error_code) == (True, None)
    assert first.responsible_person is not None
    assert first.responsible_person.work_phone == "200"
    again = await pyrus.register_call(
        account_id=demo.ACCOUNT_ID,
        from_number=FROM,
        to_number=TO,
        external_id="pbx-77",
        mappings=[
            CallMapping(code=TelephonyMappingCode.call_duration, value=750),
            CallMapping(code=TelephonyMappingCode.rating, value=5),
        ],
    )
    assert (again.task_id, again.is_new_task) == (first.task_id, False)
    assert again.responsible_person == first.responsible_person
    assert first.task_id is not None
    return first.task_id


async def test_aiopyrus_registers_a_call_and_attaches_its_records(client, pyrus_url):
    async with user_client(pyrus_url) as pyrus:
        task_id = await register_twice(pyrus)
        by_task = await pyrus.upload_file(WAV, filename="call.wav")
        answer = await pyrus.attach_call_record(
            account_id=demo.ACCOUNT_ID, record_file=by_task.guid, task_id=task_id
        )
        assert (answer.error_code, answer.error) == (None, None)
        by_external_id = await pyrus.upload_file(MP3, filename="call.mp3")
        answer = await pyrus.attach_call_record(
            account_id=demo.ACCOUNT_ID,
            record_file=by_external_id.guid,
            external_id="pbx-77",
            mappings=[CallMapping(code="CallEndTime", value="2021-12-23T00:24:02Z")],
        )
        assert answer.error_code is None
        stored_file = await file_id_of(client, by_external_id.guid)
        assert await pyrus.download_file(str(stored_file)) == MP3

    [call] = [c for c in await calls_of(client) if c["external_id"] == "pbx-77"]
    assert (call["task_id"], call["from_number"], call["to_number"]) == (task_id, FROM, TO)
    assert call["internal_number"] == "200"
    assert call["record_file_id"] == stored_file
    agent = await rows(
        client,
        sa.select(tables.users.c.id).where(tables.users.c.email == p("e")),
        e="agent@frontdesk.local",
    )
    assert (await task_of(client, task_id))["responsible_id"] == agent[0]["id"]
    uploads = await rows(
        client,
        sa.select(tables.files.c.guid, tables.files.c.user_id, tables.files.c.name).where(
            tables.files.c.id == p("id")
        ),
        id=stored_file,
    )
    assert uploads == [{"guid": by_external_id.guid, "user_id": agent[0]["id"], "name": "call.mp3"}]
    recordings = [c for c in await comments_of(client, task_id) if c["text"] == "Call recording"]
    assert [await attachments_of(client, c["id"]) for c in recordings] == [
        [by_task.guid],
        [by_external_id.guid],
    ]
    assert await values_of(client, task_id) == {
        "CallStartTime": "2021-12-23T00:11:32Z",
        "CallDuration": "750",
        "Rating": "5",
        "CallEndTime": "2021-12-23T00:24:02Z",
    }


async def test_aiopyrus_sees_the_error_codes(client, pyrus_url):
    async with user_client(pyrus_url) as pyrus:
        task_id = await register_twice(pyrus)
        notes = await pyrus.upload_file(b"not audio", filename="notes.txt")
        cases = [
            ({"record_file": notes.guid, "task_id": task_id}, "unsupported_record_file_format"),
            ({"record_file": notes.guid, "external_id": "nope"}, "unrecognized_call_id"),
            ({"record_file": notes.guid, "task_id": task_id + 10**6}, "unrecognized_task_id"),
        ]
        for body, code in cases:
            with pytest.raises(PyrusAPIError) as refused:
                await pyrus.attach_call_record(account_id=demo.ACCOUNT_ID, **body)
            assert (refused.value.status_code, refused.value.error_code) == (400, code)
        with pytest.raises(PyrusAPIError) as refused:
            await pyrus.register_call(account_id="nobody", from_number=FROM, to_number=TO)
        assert refused.value.error_code == "unrecognized_account_id"
    [call] = [c for c in await calls_of(client) if c["external_id"] == "pbx-77"]
    assert call["record_file_id"] is None
