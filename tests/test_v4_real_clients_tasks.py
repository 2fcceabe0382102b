"""Pyrus' official Python client (pyrus-api 2.50.0), unchanged but for the host, against a
real `frontdesk serve` process: forms, the register, tasks, comments and the inbox, checked
by what the client parsed (its own models), not by our JSON.

The users, the form and an extension are made through the core before the server starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from pyrus import client as pyrus_client
from pyrus.models import entities
from pyrus.models import requests as req

from frontdesk.core import extensions, forms, users
from frontdesk.core.forms import FieldSpec
from frontdesk.storage.database import open_database

from factories import served

# pyrus-api's own habits, not ours: its jsonpickle warns about its next version, and
# upload_file opens the file without closing it
pytestmark = [
    pytest.mark.filterwarnings("ignore:keys will default to True:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"),
]

FIELDS = (
    FieldSpec("Subject", "text"),
    FieldSpec("Amount", "money", "Amount due"),
    FieldSpec("MessageType", "choice", choices=("Telegram", "VK")),
    FieldSpec("Due", "date"),
)


@dataclass
class World:
    ann: users.NewUser
    bob: users.NewUser
    form_id: int
    ids: dict[str, int]
    client_id: str
    secret: str


@pytest.fixture
async def world(database_url) -> World:
    db = await open_database(database_url)
    try:
        ann = await db.write(users.add_user, "ann@example.com", "Ann", "Lee", work_phone="201")
        bob = await db.write(users.add_user, "bob@example.com", "Bob", "Stone")
        form_id = await db.write(forms.add_form, "Support", FIELDS)
        form = await db.read(forms.load_form, form_id)
        extension = await db.write(extensions.add_extension, "Telegram bridge")
        await db.write(extensions.add_account, extension.extension_id, "bot-1", form_id)
    finally:
        await db.close()
    ids = {code: found.id for code, found in form.fields.items()}
    return World(ann, bob, form_id, ids, extension.client_id, extension.secret)


@pytest.fixture
def server(world, database_url, tmp_path):
    with served(database_url, tmp_path) as base:
        yield base


def official_client(server: str, user: users.NewUser) -> pyrus_client.PyrusAPI:
    """pyrus-api, told our host the only way it allows: its protocol and host attributes."""
    api = pyrus_client.PyrusAPI(login=user.email, security_key=user.security_key)
    api._protocol = "http"
    api._host = urlsplit(server).netloc
    return api


def new_form_task(world: World) -> req.CreateTaskRequest:
    ids = world.ids
    return req.CreateTaskRequest(
        form_id=world.form_id,
        text="Printer jammed",
        responsible=world.bob.user_id,
        fields=[
            entities.FormField(id=ids["Subject"], value="Printer"),
            entities.FormField(id=ids["Amount"], value=12.5),
            entities.FormField(
                id=ids["MessageType"], value=entities.MultipleChoice(choice_ids=[2])
            ),
            entities.FormField(name="Due", value="2024-05-01"),
        ],
    )


async def test_forms_as_the_official_client_reads_them(server, world):
    api = official_client(server, world.ann)
    assert api.auth().success
    [form] = api.get_forms().forms
    assert (form.id, form.name, form.deleted_or_closed) == (world.form_id, "Support", False)
    assert [(f.id, f.type, f.name, f.code) for f in form.fields] == [
        (world.ids["Subject"], "text", "Subject", "Subject"),
        (world.ids["Amount"], "money", "Amount due", "Amount"),
        (world.ids["MessageType"], "multiple_choice", "MessageType", "MessageType"),
        (world.ids["Due"], "date", "Due", "Due"),
    ]
    one = api.get_form(world.form_id)
    assert one.error_code is None, one.original_response
    options = one.fields[2].info.options
    assert [(o.choice_id, o.choice_value) for o in options] == [(1, "Telegram"), (2, "VK")]
    assert api.get_form(world.form_id + 1000).error_code == "access_denied_form"


async def test_tasks_comments_register_and_inbox_through_the_official_client(
    server, world, tmp_path
):
    ann, bob, ids = world.ann, world.bob, world.ids
    api = official_client(server, ann)
    created = api.create_task(new_form_task(world))
    assert created.error_code is None, created.original_response
    task = created.task
    values = {f.code: f.value for f in task.fields}
    assert values["Subject"] == "Printer" and values["Amount"] == 12.5
    assert (values["MessageType"].choice_ids, values["MessageType"].choice_names) == ([2], ["VK"])
    assert values["Due"] == datetime(2024, 5, 1, tzinfo=UTC)
    assert (task.form_id, task.author.id, task.responsible.email) == (
        world.form_id,
        ann.user_id,
        bob.email,
    )
    assert task.create_date.tzinfo is not None and task.close_date is None
    assert [c.text for c in task.comments] == ["Printer jammed"]

    simple = api.create_task(req.CreateTaskRequest(text="Help with printer", responsible=bob.email))
    assert (simple.task.text, simple.task.responsible.id) == ("Help with printer", bob.user_id)
    assert api.get_task(simple.task.id).task.comments[0].author.email == ann.email

    def register(request=None):
        found = api.get_registry(world.form_id, request)
        assert found.error_code is None, found.original_response
        return [t.id for t in found.tasks]

    assert register() == [task.id]
    vk = entities.EqualsFilter(ids["MessageType"], 2)
    assert register(req.FormRegisterRequest(filters=[vk])) == [task.id]
    assert (
        register(req.FormRegisterRequest(filters=[entities.LessThanFilter(ids["Amount"], 5)])) == []
    )

    path = tmp_path / "fix.txt"
    path.write_bytes(b"replaced the roller")
    guid = api.upload_file(str(path)).guid
    commented = api.comment_task(
        task.id,
        req.TaskCommentRequest(
            text="Fixed",
            action="finished",
            reassign_to=ann.user_id,
            attachments=[guid],
            field_updates=[{"id": ids["Amount"], "value": 99}],
        ),
    )
    assert commented.error_code is None, commented.original_response
    last = commented.task.comments[-1]
    assert (last.text, last.action, last.author.id, last.reassigned_to.id) == (
        "Fixed",
        "finished",
        ann.user_id,
        ann.user_id,
    )
    assert [(u.code, u.value) for u in last.field_updates] == [("Amount", 99)]
    assert [(f.name, f.size) for f in last.attachments] == [("fix.txt", 19)]
    assert commented.task.close_date is not None

    archived = req.FormRegisterRequest(
        include_archived=True, filters=[entities.GreaterThanFilter(ids["Amount"], 50)]
    )
    assert register(archived) == [task.id]
    assert register() == []

    inbox = official_client(server, bob).get_inbox()
    assert inbox.error_code is None, inbox.original_response
    assert ([t.id for t in inbox.tasks], inbox.has_more) == ([simple.task.id], False)
    assert api.get_task(task.id + 1000).error_code == "access_denied_task"


async def test_an_answer_to_the_customer_through_the_official_client(server, world):
    token = httpx.post(
        f"{server}/v1/token", json={"client_id": world.client_id, "secret": world.secret}
    ).json()["access_token"]
    message = httpx.post(
        f"{server}/v1/getmessage",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "account_id": "bot-1",
            "channel_id": "chat-7",
            "sender_name": "Paul",
            "message_type": "Telegram",
            "message_text": "Is my order shipped?",
        },
    )
    task_id = message.json()["tasks"][0]["task_id"]
    api = official_client(server, world.ann)
    answered = api.comment_task(
        task_id, req.TaskCommentRequest(text="Yes, today", channel="telegram")
    )
    assert answered.error_code is None, answered.original_response
    customer, answer = answered.task.comments
    assert (customer.channel.type, customer.channel.sender) == ("telegram", {"name": "Paul"})
    assert (answer.channel.type, answer.channel.to) == ("telegram", {"name": "Paul"})
    message_type = {f.code: f.value for f in answered.task.fields}["MessageType"]
    assert message_type.choice_names == ["Telegram"]
