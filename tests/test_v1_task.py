"""POST /v1/task: a new task in the account's form, its first comment and its field values."""

from __future__ import annotations

import pytest

from factories import (
    comments_of,
    make_connector,
    nulls_in,
    set_enabled,
    task_of,
    tasks_of,
    values_of,
)

SANITISE_CASES = [
    ("<b>bold</b> <script>alert(1)</script>tail", "<b>bold</b> tail"),
    ('<button onclick="steal()">Pay</button>', "<button>Pay</button>"),
    ('<mark data-color="purple">p</mark>', "<mark>p</mark>"),
    ('<mark data-color="red">r</mark>', '<mark data-color="red">r</mark>'),
    ('<a href="javascript:alert(1)">j</a>', "<a>j</a>"),
    ('<a href="https://example.com/x">e</a>', '<a href="https://example.com/x">e</a>'),
    ('<div data-type="heading">H</div>', '<div data-type="heading">H</div>'),
    ('<p style="x">para</p><img src="x" onerror="y()">', "para"),
]
DOCUMENTED_HTML = (
    '<i>i</i><br><code>c</code><b>b</b><s>s</s><div data-type="heading">h</div><q>q</q>'
    '<mark data-color="red">r</mark><mark data-color="yellow">y</mark>'
    '<mark data-color="green">g</mark><mark data-color="blue">bl</mark>'
    '<ul><li>u1</li><li>u2</li></ul><ol><li>o1</li></ol><a href="https://x.example/">a</a>'
    "<button>go</button>"
)


async def post_task(client, connector, **body):
    return await client.post(
        "/v1/task", headers=connector.headers, json={"account_id": connector.account_id, **body}
    )


async def test_task_answers_task_ids_and_tasks(client):
    connector = await make_connector(client)
    response = await post_task(client, connector, text="My order is late")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    task_id = body["task_ids"][0]
    assert isinstance(task_id, int)
    # no responsible person yet: the key is left out, not null
    assert body == {"task_ids": [task_id], "tasks": [{"task_id": task_id, "is_new_task": True}]}
    task = await task_of(client, task_id)
    assert task["form_id"] == connector.form_id
    assert task["account_ref"] == connector.account_ref
    assert task["subject"] == "My order is late"
    assert task["closed_at"] is None
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "My order is late"
    assert comment["html"] is None
    assert comment["direction"] == "in"


async def test_every_task_request_makes_a_new_task(client):
    connector = await make_connector(client)
    first = (await post_task(client, connector, text="same")).json()
    second = (await post_task(client, connector, text="same")).json()
    assert first["task_ids"] != second["task_ids"]
    assert second["tasks"][0]["is_new_task"] is True
    assert len(await tasks_of(client)) == 2


async def test_task_with_only_mappings_has_values_and_no_comment(client):
    connector = await make_connector(client)
    response = await post_task(
        client, connector, mappings=[{"code": "Subject", "value": "From the site"}]
    )
    assert response.status_code == 200, response.text
    assert "error_code" not in response.json()
    task_id = response.json()["task_ids"][0]
    assert await values_of(client, task_id) == {"Subject": "From the site"}
    assert await comments_of(client, task_id) == []


async def test_task_account_id_may_be_a_number(client):
    connector = await make_connector(client, account_id="12345")
    response = await client.post(
        "/v1/task", headers=connector.headers, json={"account_id": 12345, "text": "hi"}
    )
    assert response.status_code == 200, response.text
    task = await task_of(client, response.json()["task_ids"][0])
    assert task["account_ref"] == connector.account_ref


@pytest.mark.parametrize(("html", "clean"), SANITISE_CASES)
async def test_text_html_is_sanitised_to_the_documented_tags(client, html, clean):
    connector = await make_connector(client)
    response = await post_task(client, connector, text_html=html)
    assert response.status_code == 200, response.text
    [comment] = await comments_of(client, response.json()["task_ids"][0])
    assert comment["html"] == clean


async def test_every_documented_tag_survives_and_plain_text_is_stored_beside(client):
    connector = await make_connector(client)
    response = await post_task(client, connector, text_html=DOCUMENTED_HTML)
    [comment] = await comments_of(client, response.json()["task_ids"][0])
    assert comment["html"] == DOCUMENTED_HTML
    assert comment["text"] == "i\ncbs\nh\nq\nrygbl\n- u1\n- u2\n- o1\nago"


async def test_text_sent_with_text_html_is_kept_as_the_plain_text(client):
    connector = await make_connector(client)
    response = await post_task(
        client, connector, text="Hello there", text_html="<b>Hello</b> <script>x()</script>there"
    )
    task_id = response.json()["task_ids"][0]
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "Hello there"
    assert comment["html"] == "<b>Hello</b> there"
    assert (await task_of(client, task_id))["subject"] == "Hello there"


async def test_mapping_values_are_typed_and_normalised(client):
    connector = await make_connector(client)
    response = await post_task(
        client,
        connector,
        mappings=[
            {"code": "CallDuration", "value": "12.50"},
            {"code": "CallStartTime", "value": "2021-12-23T03:11:32+03:00"},
            {"code": "Rating", "value": 5},
            {"code": "RatingDate", "value": "2021-12-23"},
            {"code": "MessageType", "value": "telegram"},
            {"code": "Subject", "value": 42},
        ],
    )
    assert response.status_code == 200, response.text
    assert "error_code" not in response.json()
    assert await values_of(client, response.json()["task_ids"][0]) == {
        "CallDuration": "12.5",
        "CallStartTime": "2021-12-23T00:11:32Z",
        "Rating": "5",
        "RatingDate": "2021-12-23",
        "MessageType": "Telegram",
        "Subject": "42",
    }


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2021-12-23T00:11:32Z", "2021-12-23T00:11:32Z"),
        ("2021-12-23T00:11:32.987Z", "2021-12-23T00:11:32Z"),
        ("2021-12-23T00:11:32", "2021-12-23T00:11:32Z"),
        ("2021-12-22T19:11:32-05:00", "2021-12-23T00:11:32Z"),
        ("0999-06-01T12:00:00+00:00", "0999-06-01T12:00:00Z"),
    ],
)
async def test_datetime_values_are_stored_in_utc_with_z(client, value, stored):
    connector = await make_connector(client)
    response = await post_task(
        client, connector, mappings=[{"code": "CallStartTime", "value": value}]
    )
    assert await values_of(client, response.json()["task_ids"][0]) == {"CallStartTime": stored}


@pytest.mark.parametrize(
    ("value", "stored"),
    [("1e3", "1000"), ("-7", "-7"), ("0.250", "0.25"), ("1e30", "1" + "0" * 30)],
)
async def test_number_values_are_stored_canonically(client, value, stored):
    connector = await make_connector(client)
    response = await post_task(
        client, connector, mappings=[{"code": "CallDuration", "value": value}]
    )
    assert response.status_code == 200, response.text
    assert await values_of(client, response.json()["task_ids"][0]) == {"CallDuration": stored}


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("CallDuration", "twelve"),
        ("CallDuration", "12,5"),
        ("CallDuration", "NaN"),
        # would expand to a million digits of text
        ("CallDuration", "1e-999999"),
        ("CallStartTime", "yesterday"),
        # before year 1 once moved to UTC
        ("CallStartTime", "0001-01-01T00:00:00+01:00"),
        ("Rating", "6"),
        ("Rating", 6),
        ("MessageType", "Skype"),
        ("RatingDate", "23.12.2021"),
        ("PhoneNumberFrom", "call me"),
    ],
)
async def test_bad_values_are_ignored_with_a_warning(client, code, value):
    connector = await make_connector(client)
    response = await post_task(
        client,
        connector,
        text="hello",
        mappings=[{"code": code, "value": value}, {"code": "Subject", "value": "kept"}],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error_code"] == "invalid_field_mapping_code"
    assert code in body["error"]
    assert body["warnings"] == [
        {"error_code": "invalid_field_mapping_code", "error": body["error"]}
    ]
    task_id = body["task_ids"][0]
    assert body["tasks"] == [{"task_id": task_id, "is_new_task": True}]
    assert await values_of(client, task_id) == {"Subject": "kept"}


async def test_unknown_mapping_code_is_a_warning_and_the_task_is_still_made(client):
    connector = await make_connector(client)
    response = await post_task(
        client,
        connector,
        text="hello",
        mappings=[
            {"code": "PostLink", "value": "https://specialsite.com/post123"},
            {"code": "Subject", "value": "kept"},
            {"code": "NoSuchCode", "value": "x"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "PostLink" in body["error"] and "NoSuchCode" in body["error"]
    assert [w["error_code"] for w in body["warnings"]] == ["invalid_field_mapping_code"]
    task_id = body["task_ids"][0]
    assert body["tasks"] == [{"task_id": task_id, "is_new_task": True}]
    assert await values_of(client, task_id) == {"Subject": "kept"}
    assert [c["text"] for c in await comments_of(client, task_id)] == ["hello"]


async def test_unknown_code_and_bad_value_are_both_reported(client):
    connector = await make_connector(client)
    response = await post_task(
        client,
        connector,
        mappings=[{"code": "PostLink", "value": "x"}, {"code": "Rating", "value": "ten"}],
    )
    body = response.json()
    assert response.status_code == 200
    assert body["error_code"] == "invalid_field_mapping_code"
    assert len(body["warnings"]) == 2
    assert "PostLink" in body["warnings"][0]["error"]
    assert "Rating" in body["warnings"][1]["error"]


async def test_mapping_value_limit_is_300_characters(client):
    connector = await make_connector(client)
    ok = await post_task(client, connector, mappings=[{"code": "Subject", "value": "v" * 300}])
    assert ok.status_code == 200, ok.text
    assert await values_of(client, ok.json()["task_ids"][0]) == {"Subject": "v" * 300}
    too_long = await post_task(
        client, connector, mappings=[{"code": "Subject", "value": "v" * 301}]
    )
    assert too_long.status_code == 400
    assert too_long.json()["error_code"] == "validation_error"
    assert "Subject" in too_long.json()["error"]
    assert len(await tasks_of(client)) == 1


async def test_text_limit_is_10000_characters(client):
    connector = await make_connector(client)
    ok = await post_task(client, connector, text="a" * 10_000)
    assert ok.status_code == 200, ok.text
    [comment] = await comments_of(client, ok.json()["task_ids"][0])
    assert comment["text"] == "a" * 10_000
    for field in ("text", "text_html"):
        too_long = await post_task(client, connector, **{field: "a" * 10_001})
        assert too_long.status_code == 400
        assert too_long.json()["error_code"] == "too_large_message_text"
    assert len(await tasks_of(client)) == 1


async def test_unknown_account_is_unrecognized_account_id(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/task", headers=connector.headers, json={"account_id": "nobody", "text": "hi"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_account_id"
    assert set(response.json()) == {"error_code", "error"}
    assert await tasks_of(client) == []


async def test_account_of_another_extension_is_unrecognized(client):
    ours = await make_connector(client)
    await make_connector(client, account_id="theirs", name="Other connector")
    response = await client.post(
        "/v1/task", headers=ours.headers, json={"account_id": "theirs", "text": "hi"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_account_id"


async def test_disabled_account_is_webhook_is_disabled(client):
    connector = await make_connector(client)
    await set_enabled(connector, False)
    response = await post_task(client, connector, text="hi")
    assert response.status_code == 400
    assert response.json()["error_code"] == "webhook_is_disabled"
    assert await tasks_of(client) == []
    await set_enabled(connector, True)
    assert (await post_task(client, connector, text="hi")).status_code == 200


async def test_missing_account_id_is_named(client):
    connector = await make_connector(client)
    for body in ({"text": "hi"}, {"account_id": "", "text": "hi"}, {"account_id": None}):
        response = await client.post("/v1/task", headers=connector.headers, json=body)
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "required_parameters_not_specified",
            "error": "Required parameters not specified: account_id",
        }


@pytest.mark.parametrize(
    "body",
    [
        {"account_id": "acc-1", "text": 5},
        {"account_id": "acc-1", "text_html": ["<b>x</b>"]},
        {"account_id": {"id": 1}},
        {"account_id": "acc-1", "mappings": "Subject=x"},
        {"account_id": "acc-1", "mappings": [{"value": "no code"}]},
        {"account_id": "acc-1", "mappings": [{"code": "Subject", "value": {"x": 1}}]},
        {"account_id": "a" * 301},
    ],
)
async def test_wrong_types_and_lengths_are_validation_error(client, body):
    connector = await make_connector(client)
    response = await client.post("/v1/task", headers=connector.headers, json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    assert await tasks_of(client) == []


async def test_unknown_extra_fields_are_ignored(client):
    connector = await make_connector(client)
    response = await post_task(client, connector, text="hi", priority="high", tags=["a"])
    assert response.status_code == 200, response.text


async def test_no_nulls_in_any_answer(client):
    connector = await make_connector(client)
    answers = [
        await post_task(client, connector, text="hi"),
        await post_task(client, connector, mappings=[{"code": "Nope", "value": "x"}]),
        await post_task(client, connector, text=None, text_html=None, mappings=[]),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert nulls_in(answer.json()) == []
