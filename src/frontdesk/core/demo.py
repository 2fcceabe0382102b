"""Demo data: every example request in the protocol documents works against it verbatim
(host and bearer token aside). Idempotent: running it again changes nothing.

The ids and guids below are the documents' own examples: task 15862 (/comment), task 45873
with a call (/attachcallrecord), file 123 (/files/download/123), and the uploaded guids that
/getmessage and /attachcallrecord refer to. The Planfix chat provider `superchat` has the
Planfix document's key, so its sample newMessage and getTask calls work as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import extensions, forms, planfix, users
from frontdesk.core.channels import INSERT_CHANNEL
from frontdesk.core.clock import utcnow
from frontdesk.core.comments import Formatted, NewComment, add_comment
from frontdesk.core.forms import FieldSpec
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import calls, files, tasks
from frontdesk.storage.tables import extension_accounts as accounts
from frontdesk.storage.tables import extensions as ext_table

CLIENT_ID = "unique12345@login.edu"
# The document's /token example masks the secret as "czWhgtoLnm****"; the demo uses exactly
# that string so the example works unchanged.
SECRET = "czWhgtoLnm****"
ACCOUNT_ID = "uniqueID12345"
AGENT = {
    "email": "agent@frontdesk.local",
    "password": "frontdesk-demo",
    "security_key": "demo-security-key-0000000000000000",
    "work_phone": "200",
}
#: the Planfix chat API document's sample provider, its key, and the chat system's own key
PLANFIX = {
    "provider_id": "superchat",
    "planfix_token": "303cb962ac59075b964b07152d234b70",
    "provider_token": "202cb962ac59075b964b07152d234b70",
}
COMMENT_TASK_ID = 15862
CALL_TASK_ID = 45873
MESSAGE_TYPES = (
    "Telegram",
    "VK",
    "WhatsApp",
    "Viber",
    "Facebook",
    "Instagram",
    "Email",
    "Web chat",
)
FIELDS = (
    FieldSpec("Subject", "text", "Subject"),
    FieldSpec("SenderName", "text", "Sender name"),
    FieldSpec("PostLink", "text", "Post link"),
    FieldSpec("MessageType", "choice", "Message type", MESSAGE_TYPES),
    FieldSpec("StartTime", "datetime", "Start time"),
    FieldSpec("EndTime", "datetime", "End time"),
    FieldSpec("Rating", "choice", "Service rating", ("1", "2", "3", "4", "5")),
    FieldSpec("CallDuration", "number", "Call duration"),
    FieldSpec("CallStartTime", "datetime", "Call start time"),
    FieldSpec("CallEndTime", "datetime", "Call end time"),
    FieldSpec("PhoneNumberFrom", "phone", "Client phone number"),
    FieldSpec("PhoneNumberTo", "phone", "Operator phone number"),
    FieldSpec("RatingComment", "text", "Rating comment"),
    FieldSpec("RatingDate", "date", "Rating date"),
    # the Planfix document's data_utm_source / data_utm_medium example (fields by name)
    FieldSpec("utm_source", "text", "utm_source"),
    FieldSpec("utm_medium", "text", "utm_medium"),
)
# (id, guid, name, bytes): the documents' examples
FILES = (
    (123, "8f0c2a4e-6a52-4f7e-9d0b-5c1b2a3d4e5f", "test.txt", b"hello world!"),
    (124, "50b15ea9-41aa-4820-8350-8c6a3a16ed84", "photo1.jpg", b"\xff\xd8\xff\xe0demo-photo-1"),
    (125, "00464c7d-9bd1-42ac-901b-3beb8e9ecee5", "photo2.jpg", b"\xff\xd8\xff\xe0demo-photo-2"),
    (126, "08923d83-255b-4f18-b0eb-5c4d3b9bf1d2", "call-record.mp3", b"ID3\x03\x00demo-call"),
)


@dataclass(frozen=True)
class DemoCredentials:
    client_id: str
    secret: str
    account_id: str
    agent: dict[str, str]
    planfix: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "extension": {"client_id": self.client_id, "secret": self.secret},
            "account_id": self.account_id,
            "agent": dict(self.agent),
            "planfix": {key: self.planfix[key] for key in ("provider_id", "planfix_token")},
        }


INSERT_TASK_WITH_ID = Query(
    sa.insert(tasks).values(
        id=p("id"),
        form_id=p("form_id"),
        account_ref=p("account_ref"),
        subject=p("subject"),
        created_at=p("now"),
        updated_at=p("now"),
    )
)
INSERT_FILE_WITH_ID = Query(
    sa.insert(files).values(
        id=p("id"),
        guid=p("guid"),
        name=p("name"),
        size=p("size"),
        md5=p("md5"),
        content_type=p("content_type"),
        extension_id=p("extension_id"),
        created_at=p("now"),
    )
)
INSERT_CALL = Query(
    sa.insert(calls).values(
        account_ref=p("account_ref"),
        task_id=p("task_id"),
        external_id=p("external_id"),
        from_number="+79774221338",
        to_number="+74953009080",
        record_file_id=p("record_file_id"),
        created_at=p("now"),
        updated_at=p("now"),
    )
)
EXTENSION_ID = Query(sa.select(ext_table.c.id).where(ext_table.c.client_id == p("client_id")))
# After explicit ids, PostgreSQL's identity sequences must continue above them.
SYNC_SEQUENCES = [
    Query(
        sa.select(
            sa.func.setval(
                sa.func.pg_get_serial_sequence(table.name, "id"),
                sa.select(sa.func.max(table.c.id)).scalar_subquery(),
            )
        )
    )
    for table in (tasks, files)
]


DEMO_FORM = Query(
    sa.select(accounts.c.form_id)
    .where(accounts.c.account_id == p("account_id"))
    .order_by(accounts.c.id)
    .limit(1)
)


def credentials() -> DemoCredentials:
    return DemoCredentials(CLIENT_ID, SECRET, ACCOUNT_ID, AGENT, PLANFIX)


async def _planfix(tx: Tx, form_id: int) -> None:
    """The sample chat provider; answers stay in Frontdesk until it is given a URL."""
    if await planfix.integration_exists(tx, PLANFIX["provider_id"]):
        return
    await planfix.add_integration(
        tx,
        PLANFIX["provider_id"],
        None,
        PLANFIX["provider_token"],
        form_id=form_id,
        default_agent_email=AGENT["email"],
        planfix_token=PLANFIX["planfix_token"],
    )


async def _files(tx: Tx, blobs: BlobStore, extension_id: int) -> dict[str, int]:
    ids = {}
    for file_id, guid, name, data in FILES:
        blob = blobs.put(data, key=guid)
        await tx.run(
            INSERT_FILE_WITH_ID,
            id=file_id,
            guid=guid,
            name=name,
            size=blob.size,
            md5=blob.md5,
            content_type="application/octet-stream",
            extension_id=extension_id,
            now=utcnow(),
        )
        ids[name] = file_id
    return ids


async def _tasks(tx: Tx, account: extensions.Account, file_ids: dict[str, int]) -> None:
    now = utcnow()
    for task_id, subject in (
        (COMMENT_TASK_ID, "Demo: a task for the /comment example"),
        (CALL_TASK_ID, "Call from +79774221338"),
    ):
        await tx.run(
            INSERT_TASK_WITH_ID,
            id=task_id,
            form_id=account.form_id,
            account_ref=account.id,
            subject=subject,
            now=now,
        )
    await add_comment(
        tx,
        NewComment(
            COMMENT_TASK_ID,
            Formatted("Demo attachments"),
            file_ids=[file_ids["test.txt"], file_ids["photo1.jpg"], file_ids["photo2.jpg"]],
        ),
    )
    await tx.run(
        INSERT_CALL,
        account_ref=account.id,
        task_id=CALL_TASK_ID,
        external_id="demo-call-45873",
        record_file_id=file_ids["call-record.mp3"],
        now=now,
    )
    # the caller's conversation, as the document's own /call example makes it: that example
    # then lands in this task, and its comments show the telephone channel
    caller = await tx.one(
        INSERT_CHANNEL,
        task_id=CALL_TASK_ID,
        account_ref=account.id,
        kind="caller",
        key="+79774221338",
        generation=1,
        message_type=None,
        sender_name=None,
        now=now,
    )
    assert caller is not None
    call_text = Formatted("Call from +79774221338 to +74953009080")
    await add_comment(tx, NewComment(CALL_TASK_ID, call_text, channel_id=caller["id"]))
    if tx.dialect == "postgresql":
        for query in SYNC_SEQUENCES:
            await tx.one(query)


async def seed(tx: Tx, blobs: BlobStore) -> DemoCredentials:
    """Create the demo extension, account, form, agent, tasks and files unless present."""
    if await tx.one(EXTENSION_ID, client_id=CLIENT_ID) is not None:
        # demo data made before Planfix chats existed gets the provider now
        demo_form = await tx.one(DEMO_FORM, account_id=ACCOUNT_ID)
        if demo_form is not None:
            await _planfix(tx, demo_form["form_id"])
        return credentials()
    await users.add_user(
        tx,
        AGENT["email"],
        "Ilya",
        "Laserson",
        work_phone=AGENT["work_phone"],
        password=AGENT["password"],
        security_key=AGENT["security_key"],
    )
    form_id = await forms.add_form(tx, "Demo requests", FIELDS)
    extension = await extensions.add_extension(
        tx, "Demo connector", None, client_id=CLIENT_ID, secret=SECRET
    )
    account = await extensions.add_account(
        tx, extension.extension_id, ACCOUNT_ID, form_id, name="Demo account"
    )
    file_ids = await _files(tx, blobs, extension.extension_id)
    await _tasks(tx, account, file_ids)
    await _planfix(tx, form_id)
    return credentials()
