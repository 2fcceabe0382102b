"""GET /v4/forms, /v4/forms/{form_id} and /v4/forms/{form_id}/register.

The register takes its parameters as Pyrus' clients send them: pyrus-api POSTs a JSON object
(`FormRegisterRequest`), others send a GET with the same names in the query string. A field
filter is `fld{id}`: a value (`fld3=Paid`), several (`fld3=1,2`: any of them), `gt5`, `lt5`,
`gt1,lt9` (both exclusive), `empty`, or `*` (has a value); `id` filters task ids the same way.
Frontdesk's forms have no workflow steps, so `steps` and `due_filter` are ignored, as is
`include_text` (no full-text search yet); `format=csv` is refused rather than answered in JSON.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from frontdesk.core import access
from frontdesk.core.auth import UserPrincipal, ensure_current_user
from frontdesk.core.forms import Form, load_form
from frontdesk.core.numbers import small_number
from frontdesk.core.task_register import Condition, RegisterQuery, register
from frontdesk.core.task_views import readable_form
from frontdesk.errors import FrontdeskError, invalid
from frontdesk.protocols.pyrus_v4.common import (
    MALFORMED,
    MAX_JSON_BODY,
    authenticate,
    endpoint,
    user_method,
)
from frontdesk.protocols.pyrus_v4.shapes import form_json, register_task_json
from frontdesk.storage.sql import Tx
from frontdesk.web.endpoints import Call, Reply
from frontdesk.web.json_body import text
from frontdesk.web.responses import ok

FIELD_FILTER = re.compile(r"fld([0-9]+)")
MAX_ITEM_COUNT = 20_000
YES = {"y", "yes", "true", "1"}
NO = {"n", "no", "false", "0", ""}


def path_id(raw: str, refusal: FrontdeskError) -> int:
    """An id from the path; text that is no id names nothing, refused like an unknown id."""
    if raw != raw.strip() or (found := small_number(raw)) is None:
        raise refusal
    return found


def form_refusal(raw: str) -> FrontdeskError:
    return FrontdeskError("access_denied_form", f"You have no access to form {raw[:40]}", 403)


def _bad(name: str, value: Any) -> FrontdeskError:
    return FrontdeskError("invalid_value_format", f"Invalid {name}: {str(value)[:60]!r}")


# --- GET /forms, GET /forms/{id} ----------------------------------------------------------


async def _visible_forms(tx: Tx, principal: UserPrincipal) -> list[Form]:
    await ensure_current_user(tx, principal)
    ids = await access.visible_form_ids(tx, principal.user_id)
    return [await load_form(tx, form_id) for form_id in ids]


async def list_forms(call: Call, principal: UserPrincipal) -> Reply:
    found = await call.ctx.db.read(_visible_forms, principal)
    return ok({"forms": [form_json(form) for form in found]})


async def _form(tx: Tx, principal: UserPrincipal, form_id: int) -> Form:
    await ensure_current_user(tx, principal)
    return await readable_form(tx, principal.user_id, form_id)


async def get_form(call: Call, principal: UserPrincipal) -> Reply:
    raw = call.path_param("form_id")
    form = await call.ctx.db.read(_form, principal, path_id(raw, form_refusal(raw)))
    return ok(form_json(form))


# --- the register's parameters ------------------------------------------------------------


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in YES or lowered in NO:
        return lowered in YES
    raise _bad(name, value)


def _count(value: Any) -> int:
    count = small_number(text(value)) if not isinstance(value, bool) else None
    if count is None or not 1 <= count <= MAX_ITEM_COUNT:
        raise _bad(f"item_count (1 to {MAX_ITEM_COUNT})", value)
    return count


def _ids(name: str, value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    found = []
    for item in items:
        number = small_number(text(item)) if not isinstance(item, bool) else None
        if number is None:
            raise _bad(name, value)
        found.append(number)
    return tuple(found)


def _moment(name: str, value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise _bad(name, value) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(text(value))
    raise _bad("filter value", value)


def condition(value: Any) -> Condition:
    """A filter as Pyrus encodes it: a value, a list, `a,b`, `gtX`, `ltY`, `gtX,ltY`, ..."""
    if isinstance(value, list):
        return Condition("eq", tuple(_scalar_text(item) for item in value))
    raw = _scalar_text(value).strip()
    if raw in ("empty", "*"):
        return Condition("empty" if raw == "empty" else "exists")
    parts = [part.strip() for part in raw.split(",")]
    bounds = re.fullmatch(r"gt(.+),lt(.+)", raw)
    if bounds:
        return Condition("range", (bounds[1].strip(), bounds[2].strip()))
    if len(parts) == 1 and raw[:2] in ("gt", "lt") and len(raw) > 2:
        return Condition(raw[:2], (raw[2:],))
    return Condition("eq", tuple(parts))


def _bounds(params: dict[str, Any], date: str) -> tuple[datetime | None, datetime | None]:
    """`{date}_after` and `{date}_before` (modified_after, closed_before, ...)."""
    after, before = f"{date}_after", f"{date}_before"
    return (
        _moment(after, params[after]) if after in params else None,
        _moment(before, params[before]) if before in params else None,
    )


def _field_id(digits: str) -> int:
    if (field_id := small_number(digits)) is None:  # (a longer run of digits names no field)
        raise FrontdeskError("invalid_field_id", f"No field fld{digits[:40]}")
    return field_id


def _check_unserved(params: dict[str, Any]) -> None:
    # an explicit null is the default, as clients that serialise every field send it
    if str(params.get("format") or "json").lower() != "json":
        raise _bad("format (only json is served)", params["format"])
    if str(params.get("sort") or "id").lower() != "id":
        raise _bad("sort (only by id)", params["sort"])


def register_query(params: dict[str, Any]) -> RegisterQuery:
    _check_unserved(params)
    present = {key: value for key, value in params.items() if value not in (None, "", [])}
    fields = {
        _field_id(match[1]): condition(value)
        for key, value in present.items()
        if (match := FIELD_FILTER.fullmatch(key))
    }
    return RegisterQuery(
        include_archived=_flag("include_archived", present.get("include_archived", False)),
        item_count=_count(present["item_count"]) if "item_count" in present else None,
        field_ids=_ids("field_ids", present["field_ids"]) if "field_ids" in present else None,
        task_ids=_ids("task_ids", present["task_ids"]) if "task_ids" in present else None,
        task_id=condition(present["id"]) if "id" in present else None,
        fields=fields,
        created=_bounds(present, "created"),
        modified=_bounds(present, "modified"),
        closed=_bounds(present, "closed"),
    )


async def _register_params(call: Call) -> dict[str, Any]:
    """GET: the query string; POST: a JSON object (an empty body asks for no filters)."""
    if call.method == "GET":
        return dict(call.query())
    raw = await call.body(MAX_JSON_BODY)
    if not raw.strip():
        return {}
    try:
        params = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise FrontdeskError(MALFORMED, "The body is not valid JSON") from None
    if not isinstance(params, dict):
        raise invalid("The body must be a JSON object")
    return params


async def form_register(call: Call) -> Reply:
    principal = await authenticate(call)
    raw = call.path_param("form_id")
    form_id = path_id(raw, form_refusal(raw))
    query = register_query(await _register_params(call))
    found = await call.ctx.db.read(register, principal, form_id, query)
    return ok({"tasks": [register_task_json(found, task) for task in found.tasks]})


GET = ("GET",)
ENDPOINTS = (
    endpoint("/v4/forms", user_method(list_forms), "Every form the user may see", methods=GET),
    endpoint("/v4/forms/{form_id}", user_method(get_form), "A form and its fields", methods=GET),
    endpoint(
        "/v4/forms/{form_id}/register",
        form_register,
        "A form's tasks, filtered by field values",
        methods=("GET", "POST"),
    ),
)
