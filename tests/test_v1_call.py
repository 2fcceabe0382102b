"""POST /v1/call: a call from the telephony system registers as a task (or updates its call).

What POST /v4/integrations/call does alike is tested here once, over both APIs, and so are the
account's errors, alike for every method that names an account (/v1/getmessage too)."""

from __future__ import annotations

import asyncio

import pytest

from factories import (
    APIS,
    TELEPHONY_FIELDS,
    add_account,
    calls_of,
    channels_of,
    close_task,
    comments_of,
    make_agent,
    make_caller,
    make_connector,
    nulls_in,
    set_enabled,
    task_of,
    tasks_of,
    values_of,
)

SEED_EXAMPLE = {
    "account_id": "uniqueID12345",
    "from_number": "+79774221338",
    "to_number": "+74953009080",
    "internal_number": "200",
    "mappings": [{"code": "Subject", "value": "Consultation"}],
}

FROM, TO = "+79774221338", "+74953009080"


async def call(client, connector, **body):
    payload = {"account_id": connector.account_id, "from_number": FROM, "to_number": TO, **body}
    return await client.post("/v1/call", headers=connector.headers, json=payload)


def landed(response):
    """(task_id, is_new_task) of a successful answer."""
    assert response.status_code == 200, response.text
    [task] = response.json()["tasks"]
    return task["task_id"], task["is_new_task"]


async def test_call_makes_a_task_with_the_call_and_a_comment(client):
    connector = await make_connector(client)
    response = await call(client, connector)
    assert response.headers["content-type"].startswith("application/json")
    task_id, is_new = landed(response)
    assert is_new is True
    assert response.json() == {"tasks": [{"task_id": task_id, "is_new_task": True}]}
    task = await task_of(client, task_id)
    assert task["form_id"] == connector.form_id
    assert task["account_ref"] == connector.account_ref
    assert task["responsible_id"] is None
    assert task["subject"] == "Call from +79774221338"
    [stored] = await calls_of(client)
    assert stored["task_id"] == task_id
    assert stored["account_ref"] == connector.account_ref
    assert (stored["from_number"], stored["to_number"]) == ("+79774221338", "+74953009080")
    assert stored["external_id"] is None and stored["internal_number"] is None
    [channel] = await channels_of(client)
    assert (channel["kind"], channel["key"], channel["task_id"]) == (
        "caller",
        "+79774221338",
        task_id,
    )
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "Call from +79774221338 to +74953009080"
    assert comment["channel_id"] == channel["id"]


async def test_the_documents_example_sets_the_operator_responsible(client):
    connector = await make_connector(client, account_id="uniqueID12345")
    agent = await make_agent(client, work_phone="200")
    response = await client.post("/v1/call", headers=connector.headers, json=SEED_EXAMPLE)
    task_id, _ = landed(response)
    assert response.json() == {
        "tasks": [
            {
                "task_id": task_id,
                "is_new_task": True,
                "responsible_person": {
                    "user_id": agent.user_id,
                    "first_name": "Ilya",
                    "last_name": "Laserson",
                    "work_phone": "200",
                },
            }
        ]
    }
    assert await values_of(client, task_id) == {"Subject": "Consultation"}
    assert (await calls_of(client))[0]["internal_number"] == "200"


async def test_internal_number_matches_a_formatted_work_phone(client):
    connector = await make_connector(client)
    await make_agent(client, email="other@example.com", work_phone="201")
    agent = await make_agent(client, work_phone="+7 (933) 876-20-30")
    response = await call(client, connector, internal_number="79338762030")
    task_id, _ = landed(response)
    person = response.json()["tasks"][0]["responsible_person"]
    assert person == {
        "user_id": agent.user_id,
        "first_name": "Ilya",
        "last_name": "Laserson",
        "work_phone": "+7 (933) 876-20-30",
    }
    assert isinstance(person["user_id"], int)
    assert (await task_of(client, task_id))["responsible_id"] == agent.user_id
    # noted in the call's own comment (spec.md §2), not in a second one
    assert [(c["direction"], c["text"]) for c in await comments_of(client, task_id)] == [
        (
            "in",
            "Call from +79774221338 to +74953009080, internal number 79338762030; "
            "Ilya Laserson took it and is responsible",
        )
    ]


async def test_internal_number_sent_as_a_json_number(client):
    connector = await make_connector(client)
    agent = await make_agent(client, work_phone="200")
    response = await call(client, connector, internal_number=200)
    assert response.json()["tasks"][0]["responsible_person"]["user_id"] == agent.user_id


async def test_unmatched_internal_number_leaves_no_responsible_and_no_note(client):
    connector = await make_connector(client)
    await make_agent(client, work_phone="200")
    response = await call(client, connector, internal_number="999")
    task_id, _ = landed(response)
    assert "responsible_person" not in response.json()["tasks"][0]
    assert (await task_of(client, task_id))["responsible_id"] is None
    assert [c["direction"] for c in await comments_of(client, task_id)] == ["in"]
    assert (await calls_of(client))[0]["internal_number"] == "999"


async def test_repeated_external_id_updates_that_call(client):
    connector = await make_connector(client)
    agent = await make_agent(client, work_phone="200")
    first_id, first_new = landed(await call(client, connector, external_id="ext-1"))
    response = await call(
        client, connector, external_id="ext-1", to_number="+74953009081", internal_number="200"
    )
    second_id, second_new = landed(response)
    assert (first_new, second_new) == (True, False)
    assert second_id == first_id
    assert response.json()["tasks"][0]["responsible_person"]["user_id"] == agent.user_id
    assert len(await tasks_of(client)) == 1
    [stored] = await calls_of(client)
    assert stored["external_id"] == "ext-1"
    assert stored["to_number"] == "+74953009081"
    assert stored["internal_number"] == "200"
    # a third report without internal_number keeps the one already known
    landed(await call(client, connector, external_id="ext-1"))
    assert (await calls_of(client))[0]["internal_number"] == "200"
    notes = [c for c in await comments_of(client, first_id) if c["direction"] == "internal"]
    assert len(notes) == 1


async def test_concurrent_reports_of_one_call_make_one_task(client):
    connector = await make_connector(client)
    responses = await asyncio.gather(
        *(call(client, connector, external_id="ext-1") for _ in range(6))
    )
    outcomes = [landed(response) for response in responses]
    assert len({task_id for task_id, _ in outcomes}) == 1
    assert sorted(is_new for _, is_new in outcomes) == [False] * 5 + [True]
    assert len(await tasks_of(client)) == 1
    assert len(await calls_of(client)) == 1


async def test_repeated_external_id_after_close_still_updates_that_call(client):
    connector = await make_connector(client)
    first_id, _ = landed(await call(client, connector, external_id="ext-1"))
    await close_task(client, first_id)
    second_id, second_new = landed(await call(client, connector, external_id="ext-1"))
    assert (second_id, second_new) == (first_id, False)
    assert len(await calls_of(client)) == 1


async def test_repeated_external_id_reopens_a_closed_task_under_reopen_closed(client):
    connector = await make_connector(client, routing="reopen_closed")
    first_id, _ = landed(await call(client, connector, external_id="ext-1"))
    await close_task(client, first_id)
    second_id, second_new = landed(await call(client, connector, external_id="ext-1"))
    assert (second_id, second_new) == (first_id, False)
    assert (await task_of(client, first_id))["closed_at"] is None


async def test_repeated_external_id_leaves_a_closed_task_closed_under_reuse_open(client):
    connector = await make_connector(client)
    first_id, _ = landed(await call(client, connector, external_id="ext-1"))
    await close_task(client, first_id)
    landed(await call(client, connector, external_id="ext-1"))
    assert (await task_of(client, first_id))["closed_at"] is not None


async def test_an_external_id_equal_to_a_number_is_not_that_callers_conversation(client):
    connector = await make_connector(client)
    first_id, _ = landed(await call(client, connector, external_id="+79990001122"))
    second_id, second_new = landed(await call(client, connector, from_number="+79990001122"))
    assert second_new is True and second_id != first_id


async def test_external_id_as_a_number_equals_the_same_string(client):
    connector = await make_connector(client)
    first_id, _ = landed(await call(client, connector, external_id=123456))
    second_id, second_new = landed(await call(client, connector, external_id="123456"))
    assert (second_id, second_new) == (first_id, False)
    assert [c["external_id"] for c in await calls_of(client)] == ["123456"]


async def test_distinct_external_ids_are_distinct_calls(client):
    connector = await make_connector(client)
    first_id, _ = landed(await call(client, connector, external_id="ext-1"))
    second_id, second_new = landed(await call(client, connector, external_id="ext-2"))
    assert second_new is True
    assert second_id != first_id
    assert len(await calls_of(client)) == 2


async def test_same_external_id_in_two_accounts_are_two_calls(client):
    connector = await make_connector(client)
    await add_account(connector, "acc-2")
    first_id, _ = landed(await call(client, connector, external_id="ext-1"))
    second_id, second_new = landed(
        await call(client, connector, external_id="ext-1", account_id="acc-2")
    )
    assert second_new is True
    assert second_id != first_id


async def test_reuse_open_groups_calls_from_one_number_while_open(client):
    connector = await make_connector(client)
    first_id, _ = landed(await call(client, connector))
    second_id, second_new = landed(await call(client, connector))
    assert (second_id, second_new) == (first_id, False)
    other_id, other_new = landed(await call(client, connector, from_number="+70000000001"))
    assert other_new is True and other_id != first_id
    assert len(await calls_of(client)) == 3
    await close_task(client, first_id)
    third_id, third_new = landed(await call(client, connector))
    assert third_new is True and third_id not in (first_id, other_id)


async def test_always_new_makes_a_task_for_every_call(client):
    connector = await make_connector(client, routing="always_new")
    outcomes = [landed(await call(client, connector)) for _ in range(3)]
    assert [is_new for _, is_new in outcomes] == [True, True, True]
    assert len({task_id for task_id, _ in outcomes}) == 3


async def test_reopen_closed_reopens_the_callers_task(client):
    connector = await make_connector(client, routing="reopen_closed")
    first_id, _ = landed(await call(client, connector))
    await close_task(client, first_id)
    second_id, second_new = landed(await call(client, connector))
    assert (second_id, second_new) == (first_id, False)
    assert (await task_of(client, first_id))["closed_at"] is None


async def test_unknown_code_and_bad_value_are_warnings(client):
    connector = await make_connector(client)
    response = await call(
        client,
        connector,
        mappings=[
            {"code": "StartTime", "value": "2021-12-23T00:11:32Z"},
            {"code": "CallDuration", "value": "long"},
            {"code": "Subject", "value": "kept"},
        ],
    )
    task_id, is_new = landed(response)
    body = response.json()
    assert is_new is True
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "StartTime" in body["error"] and "CallDuration" in body["error"]
    assert [w["error_code"] for w in body["warnings"]] == ["invalid_field_mapping_code"] * 2
    assert await values_of(client, task_id) == {"Subject": "kept"}
    assert len(await calls_of(client)) == 1


async def test_longest_accepted_values(client):
    connector = await make_connector(client)
    response = await call(
        client,
        connector,
        from_number="7" * 100,
        to_number="8" * 100,
        internal_number="1" * 100,
        external_id="e" * 300,
        mappings=[{"code": "Subject", "value": "v" * 300}],
    )
    landed(response)
    [stored] = await calls_of(client)
    assert stored["external_id"] == "e" * 300
    assert stored["from_number"] == "7" * 100


async def test_no_nulls_in_answers(client):
    connector = await make_connector(client)
    await make_agent(client, work_phone=None)
    await make_agent(client, email="op@example.com", work_phone="200")
    for extra in ({}, {"internal_number": "200", "mappings": [{"code": "X", "value": "1"}]}):
        response = await call(client, connector, external_id=None, **extra)
        assert response.status_code == 200, response.text
        assert nulls_in(response.json()) == []


# --- what v1 and v4 do alike --------------------------------------------------------------


async def call_through(client, caller, **body):
    """A call sent through the caller's API to its connector's account."""
    payload = {"account_id": caller.connector.account_id, "from_number": FROM, "to_number": TO}
    return await client.post(caller.path("call"), headers=caller.headers, json=payload | body)


@pytest.mark.parametrize("api", APIS)
async def test_from_and_to_are_aliases_of_from_number_and_to_number(client, api):
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("call"),
        headers=caller.headers,
        json={"account_id": caller.connector.account_id, "from": "+7900", "to": 74950001122},
    )
    task_id, _ = caller.landed(response)
    [stored] = await calls_of(client)
    assert (stored["from_number"], stored["to_number"]) == ("+7900", "74950001122")
    assert stored["task_id"] == task_id


@pytest.mark.parametrize("api", APIS)
async def test_every_telephony_code_fills_its_typed_field_and_numbers_are_coerced(client, api):
    caller = await make_caller(client, api, fields=TELEPHONY_FIELDS)
    mappings = {
        "CallDuration": 750,
        "CallStartTime": "2021-12-23T03:11:32+03:00",
        "CallEndTime": "2021-12-23T00:24:02Z",
        "PhoneNumberFrom": "+7 977 422-13-38",
        "PhoneNumberTo": "+7 (495) 300-90-80",
        "Rating": 5,
        "RatingComment": "Quick and polite",
        "RatingDate": "2021-12-23",
    }
    response = await call_through(
        client, caller, mappings=[{"code": k, "value": v} for k, v in mappings.items()]
    )
    task_id, _ = caller.landed(response)
    assert "error_code" not in response.json()
    assert await values_of(client, task_id) == {
        "CallDuration": "750",
        "CallStartTime": "2021-12-23T00:11:32Z",
        "CallEndTime": "2021-12-23T00:24:02Z",
        "PhoneNumberFrom": "+7 977 422-13-38",
        "PhoneNumberTo": "+7 (495) 300-90-80",
        "Rating": "5",
        "RatingComment": "Quick and polite",
        "RatingDate": "2021-12-23",
    }


@pytest.mark.parametrize("api", APIS)
async def test_missing_parameters_are_all_named(client, api):
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("call"), headers=caller.headers, json={"internal_number": "200"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "required_parameters_not_specified",
        "error": "Required parameters not specified: account_id, from_number, to_number",
    }
    only_to = await client.post(
        caller.path("call"),
        headers=caller.headers,
        json={"account_id": caller.connector.account_id, "from": "+7900", "to": ""},
    )
    assert only_to.status_code == 400
    assert only_to.json() == {
        "error_code": "required_parameters_not_specified",
        "error": "Required parameters not specified: to_number",
    }
    assert await tasks_of(client) == []


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "extra",
    [
        {"from_number": {"n": 1}},
        {"to": ["+7495"]},
        {"internal_number": True},
        {"external_id": [1]},
        {"mappings": [{"code": "Subject"}, "x"]},
        {"mappings": {"code": "Subject", "value": "x"}},
        {"mappings": [{"code": "Subject", "value": "v" * 301}]},
        {"external_id": "e" * 301},
        {"internal_number": "1" * 101},
        {"from_number": "7" * 101},
        {"to_number": None, "to": "7" * 101},
        {"account_id": "a" * 301},
        {"account_id": "a\u0000b"},
    ],
)
async def test_wrong_types_and_lengths_are_validation_error(client, api, extra):
    caller = await make_caller(client, api)
    response = await call_through(client, caller, **extra)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "validation_error"
    assert await calls_of(client) == []


# --- an account unknown or disabled: alike for every method that names one ----------------

#: each method that names an account, through its API, with a request it takes
ACCOUNT_REQUESTS = [
    pytest.param("v1", "call", {"from_number": FROM, "to_number": TO}, id="v1-call"),
    pytest.param("v4", "call", {"from_number": FROM, "to_number": TO}, id="v4-call"),
    pytest.param("v1", "getmessage", {"channel_id": "c", "message_text": "hi"}, id="v1-getmessage"),
]


@pytest.mark.parametrize(("api", "method", "request_body"), ACCOUNT_REQUESTS)
async def test_unknown_account_is_unrecognized_account_id(client, api, method, request_body):
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path(method), headers=caller.headers, json={"account_id": "nobody", **request_body}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_account_id"
    assert "nobody" in response.json()["error"]
    assert await tasks_of(client) == []
    assert await calls_of(client) == []


@pytest.mark.parametrize(("api", "method", "request_body"), ACCOUNT_REQUESTS)
async def test_disabled_account_is_webhook_is_disabled(client, api, method, request_body):
    caller = await make_caller(client, api)
    await set_enabled(caller.connector, False)
    body = {"account_id": caller.connector.account_id, **request_body}
    response = await client.post(caller.path(method), headers=caller.headers, json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "webhook_is_disabled"
    assert await tasks_of(client) == []
    assert await calls_of(client) == []
