"""GET /v4/forms, /v4/forms/{id} and /v4/forms/{id}/register: Pyrus' shapes, filters, access."""

from __future__ import annotations

import re

import pytest

from frontdesk.core import forms, users
from frontdesk.core.forms import FieldSpec

from factories import close_task, db_of, make_form, make_v4_agent, nulls_in, v4_task

EVERY_TYPE = (
    FieldSpec("Subject", "text", "Subject line"),
    FieldSpec("Amount", "money"),
    FieldSpec("Count", "number"),
    FieldSpec("Due", "date"),
    FieldSpec("At", "time"),
    FieldSpec("Started", "datetime"),
    FieldSpec("Phone", "phone"),
    FieldSpec("Email", "email"),
    FieldSpec("Urgent", "checkmark"),
    FieldSpec("Channel", "choice", choices=("Telegram", "VK")),
)
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def field_ids(client, form_id: int) -> dict[str, int]:
    form = await db_of(client).read(forms.load_form, form_id)
    return {code: found.id for code, found in form.fields.items()}


async def test_form_has_pyrus_field_types_codes_and_choice_options(client):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    ids = await field_ids(client, form_id)
    response = await client.get(f"/v4/forms/{form_id}", headers=agent.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["name"], body["deleted_or_closed"]) == (form_id, "Everything", False)
    types = {f["code"]: f["type"] for f in body["fields"]}
    assert types == {
        "Subject": "text",
        "Amount": "money",
        "Count": "number",
        "Due": "date",
        "At": "time",
        "Started": "due_date_time",
        "Phone": "phone",
        "Email": "email",
        "Urgent": "checkmark",
        "Channel": "multiple_choice",
    }
    assert body["fields"][0] == {
        "id": ids["Subject"],
        "type": "text",
        "name": "Subject line",
        "code": "Subject",
    }
    assert body["fields"][-1]["info"] == {
        "options": [
            {"choice_id": 1, "choice_value": "Telegram"},
            {"choice_id": 2, "choice_value": "VK"},
        ]
    }
    assert nulls_in(body) == []


async def test_forms_lists_the_forms_the_user_may_see(client):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    open_form = await make_form(client, "Open")
    closed_form = await make_form(client, "Closed", members=(ann.user_id,))

    async def listed(agent):
        response = await client.get("/v4/forms", headers=agent.headers)
        assert response.status_code == 200, response.text
        return [(f["id"], f["name"], len(f["fields"])) for f in response.json()["forms"]]

    assert await listed(ann) == [(open_form, "Open", 8), (closed_form, "Closed", 8)]
    assert await listed(bob) == [(open_form, "Open", 8)]


@pytest.mark.parametrize("suffix", ["", "/register"])
async def test_a_restricted_unknown_or_malformed_form_is_access_denied(client, suffix):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    closed_form = await make_form(client, "Closed", members=(ann.user_id,))
    assert (
        await client.get(f"/v4/forms/{closed_form}{suffix}", headers=ann.headers)
    ).status_code == 200
    for form in (closed_form, closed_form + 1000, "abc", "1" * 30):
        response = await client.get(f"/v4/forms/{form}{suffix}", headers=bob.headers)
        assert response.status_code == 403, (form, response.text)
        assert response.json()["error_code"] == "access_denied_form"


# --- the register -------------------------------------------------------------------------


async def three_tasks(client, agent, form_id):
    """Two open tasks and a closed one, with values to filter on."""
    ids = await field_ids(client, form_id)

    def values(**by_code):
        return [{"id": ids[code], "value": value} for code, value in by_code.items()]

    first = await v4_task(
        client,
        agent,
        form_id=form_id,
        fields=values(
            Subject="Printer", Amount=10, Due="2024-01-05", Channel="Telegram", Urgent="checked"
        ),
    )
    second = await v4_task(
        client,
        agent,
        form_id=form_id,
        fields=values(Subject="printer", Amount=250.5, Due="2024-02-01", Channel="VK"),
    )
    third = await v4_task(
        client,
        agent,
        form_id=form_id,
        fields=values(Subject="Scanner", Due="2024-03-01", Channel="Telegram"),
    )
    await close_task(client, third["id"])
    return ids, [first["id"], second["id"], third["id"]]


async def registered(client, agent, form_id, via, params):
    path = f"/v4/forms/{form_id}/register"
    if via == "GET":
        response = await client.get(path, headers=agent.headers, params=params)
    else:
        response = await client.post(path, headers=agent.headers, json=params)
    assert response.status_code == 200, response.text
    return response.json()["tasks"]


@pytest.mark.parametrize("via", ["GET", "POST"])
@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        ("Subject", "printer", [0, 1]),
        ("Subject", "Printer,Scanner", [0, 1]),
        ("Amount", "gt100", [1]),
        ("Amount", "lt100", [0]),
        ("Amount", "gt5,lt300", [0, 1]),
        ("Amount", "gt10,lt300", [1]),
        ("Amount", "10,250.5", [0, 1]),
        ("Amount", "*", [0, 1]),
        ("Amount", "empty", []),
        ("Due", "gt2024-01-31", [1]),
        ("Due", "2024-01-05", [0]),
        ("Channel", "1", [0]),
        ("Channel", "VK", [1]),
        ("Channel", "2,1", [0, 1]),
        ("Urgent", "checked", [0]),
        ("Urgent", "empty", [1]),
    ],
)
async def test_register_filters_open_tasks_by_field(client, via, code, value, expected):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    ids, tasks = await three_tasks(client, agent, form_id)
    found = await registered(client, agent, form_id, via, {f"fld{ids[code]}": value})
    assert [task["id"] for task in found] == [tasks[i] for i in expected]


@pytest.mark.parametrize("via", ["GET", "POST"])
async def test_register_includes_closed_tasks_when_asked(client, via):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    ids, tasks = await three_tasks(client, agent, form_id)
    archived = "y" if via == "GET" else True
    everything = await registered(client, agent, form_id, via, {"include_archived": archived})
    assert [task["id"] for task in everything] == tasks
    assert everything[2]["close_date"] >= everything[2]["create_date"]
    empty = {"include_archived": archived, f"fld{ids['Amount']}": "empty"}
    assert [t["id"] for t in await registered(client, agent, form_id, via, empty)] == [tasks[2]]
    no = {"include_archived": "n" if via == "GET" else False}
    assert len(await registered(client, agent, form_id, via, no)) == 2


async def test_register_task_ids_id_filters_item_count_and_dates(client):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    _, tasks = await three_tasks(client, agent, form_id)

    async def ids_of(**params):
        found = await registered(client, agent, form_id, "POST", params)
        return [task["id"] for task in found]

    assert await ids_of(task_ids=[tasks[1], tasks[2]], include_archived=True) == tasks[1:]
    assert await ids_of(id=f"gt{tasks[0]}") == [tasks[1]]
    assert await ids_of(id=f"{tasks[0]},{tasks[2]}", include_archived=True) == [tasks[0], tasks[2]]
    assert await ids_of(item_count=1, include_archived=True) == [tasks[0]]
    assert await ids_of(modified_after="2000-01-01T00:00:00Z") == tasks[:2]
    assert await ids_of(modified_before="2000-01-01T00:00:00Z") == []
    # a bound on the closing date asks for closed tasks
    assert await ids_of(closed_before="2999-01-01T00:00:00Z") == [tasks[2]]
    assert await ids_of(created_after="2999-01-01T00:00:00Z") == []


async def test_register_shows_each_task_with_its_values_typed(client):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    ids, _ = await three_tasks(client, agent, form_id)
    [first, _] = await registered(client, agent, form_id, "GET", {})
    assert DATE_TIME.match(first["create_date"]) and DATE_TIME.match(first["last_modified_date"])
    me = await db_of(client).read(users.get_member, agent.user_id)
    assert first["author"]["id"] == me.user_id and first["author"]["email"] == me.email
    assert first["form_id"] == form_id
    assert first["fields"] == [
        {"id": ids["Subject"], "type": "text", "name": "Subject line", "code": "Subject",
         "value": "Printer"},
        {"id": ids["Amount"], "type": "money", "name": "Amount", "code": "Amount", "value": 10},
        {"id": ids["Due"], "type": "date", "name": "Due", "code": "Due", "value": "2024-01-05"},
        {"id": ids["Urgent"], "type": "checkmark", "name": "Urgent", "code": "Urgent",
         "value": "checked"},
        {"id": ids["Channel"], "type": "multiple_choice", "name": "Channel", "code": "Channel",
         "value": {"choice_ids": [1], "choice_names": ["Telegram"]}},
    ]  # fmt: skip
    picked = await registered(
        client, agent, form_id, "GET", {"field_ids": f"{ids['Channel']},{ids['Subject']}"}
    )
    assert [f["code"] for f in picked[0]["fields"]] == ["Channel", "Subject"]
    assert [f["code"] for f in picked[1]["fields"]] == ["Channel", "Subject"]
    assert nulls_in(picked) == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"fld999999": "x"}, "invalid_field_id"),
        ({"fld" + "9" * 40: "x"}, "invalid_field_id"),
        ({"fld{Subject}": "gtA"}, "filter_type_is_not_supported"),
        ({"fld{Channel}": "lt2"}, "filter_type_is_not_supported"),
        ({"fld{Amount}": "gtabc"}, "invalid_value_format"),
        ({"fld{Amount}": "ten"}, "invalid_value_format"),
        ({"fld{Due}": "gt2024-13-01"}, "invalid_value_format"),
        ({"fld{Channel}": "9"}, "invalid_value_format"),
        ({"fld{Channel}": "Fax"}, "invalid_value_format"),
        ({"fld{Channel}": "\u0662"}, "invalid_value_format"),  # (an Arabic 2 is no choice id)
        ({"id": "gtx"}, "invalid_value_format"),
        ({"id": "empty"}, "filter_type_is_not_supported"),
        ({"item_count": "0"}, "invalid_value_format"),
        ({"item_count": "20001"}, "invalid_value_format"),
        ({"item_count": "many"}, "invalid_value_format"),
        ({"item_count": "9" * 5000}, "invalid_value_format"),  # (int() refuses 4,301+ digits)
        ({"id": "9" * 5000}, "invalid_value_format"),
        ({"id": "gt1,lt" + "9" * 5000}, "invalid_value_format"),
        ({"id": "9" * 19}, "invalid_value_format"),  # (past a 64-bit id)
        ({"item_count": "\u0663"}, "invalid_value_format"),  # (int() reads an Arabic 3)
        ({"id": "\uff11"}, "invalid_value_format"),  # (and a full-width 1)
        ({"include_archived": "maybe"}, "invalid_value_format"),
        ({"field_ids": "1,x"}, "invalid_value_format"),
        ({"task_ids": "-1"}, "invalid_value_format"),
        ({"modified_after": "yesterday"}, "invalid_value_format"),
        ({"format": "csv"}, "invalid_value_format"),
        ({"sort": "subject"}, "invalid_value_format"),
    ],
)
async def test_register_refuses_bad_parameters_with_their_code(client, params, code):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    ids = await field_ids(client, form_id)
    query = {key.format(**ids): value for key, value in params.items()}
    response = await client.get(
        f"/v4/forms/{form_id}/register", headers=agent.headers, params=query
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "validation_error"),
        (b'{"fld1": {"a": 1}}', "invalid_value_format"),
        (b'{"item_count": true}', "invalid_value_format"),
        (b'{"item_count": "' + b"9" * 5000 + b'"}', "invalid_value_format"),
        (b'{"id": ["' + b"9" * 5000 + b'"]}', "invalid_value_format"),
    ],
)
async def test_register_post_refuses_bad_bodies(client, body, code):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    response = await client.post(
        f"/v4/forms/{form_id}/register", headers=agent.headers, content=body
    )
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == code


async def test_register_post_with_an_empty_body_lists_the_open_tasks(client):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    _, tasks = await three_tasks(client, agent, form_id)
    response = await client.post(f"/v4/forms/{form_id}/register", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert [task["id"] for task in response.json()["tasks"]] == tasks[:2]


# --- tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v4/forms", "/v4/forms/{form}", "/v4/forms/{form}/register"])
async def test_form_methods_need_a_current_token(client, path):
    agent = await make_v4_agent(client)
    form_id = await make_form(client)
    url = path.format(form=form_id)
    missing = await client.get(url)
    assert missing.status_code == 401
    assert missing.json()["error_code"] == "token_not_specified"
    await db_of(client).write(users.rotate_security_key, agent.user_id)
    revoked = await client.get(url, headers=agent.headers)
    assert revoked.status_code == 401
    assert revoked.json()["error_code"] == "revoked_token"
