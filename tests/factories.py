"""Plain functions that make what tests need, through the core (never raw SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from frontdesk.core import auth, extensions, forms, users
from frontdesk.core.forms import FieldSpec
from frontdesk.storage.database import Database

FIELDS = (
    FieldSpec("Subject", "text"),
    FieldSpec("SenderName", "text"),
    FieldSpec("MessageType", "choice", choices=("Telegram", "VK", "WhatsApp")),
    FieldSpec("CallDuration", "number"),
    FieldSpec("CallStartTime", "datetime"),
    FieldSpec("Rating", "choice", choices=("1", "2", "3", "4", "5")),
    FieldSpec("RatingDate", "date"),
    FieldSpec("PhoneNumberFrom", "phone"),
)


@dataclass
class Connector:
    """An extension with one account on a form, and a valid access token."""

    db: Database
    extension_id: int
    client_id: str
    secret: str
    account_id: str
    account_ref: int
    form_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def db_of(client: Any) -> Database:
    db: Database = client.app.state.ctx.db
    return db


async def make_connector(
    client: Any,
    *,
    account_id: str = "acc-1",
    routing: str = "reuse_open",
    fields: tuple[FieldSpec, ...] = FIELDS,
    name: str = "Test connector",
) -> Connector:
    db = db_of(client)
    form_id = await db.write(forms.add_form, "Requests", fields)
    extension = await db.write(extensions.add_extension, name, None)
    account = await db.write(
        extensions.add_account, extension.extension_id, account_id, form_id, routing=routing
    )
    issued = await db.write(
        auth.issue_extension_token, extension.client_id, extension.secret, timedelta(hours=1)
    )
    return Connector(
        db,
        extension.extension_id,
        extension.client_id,
        extension.secret,
        account_id,
        account.id,
        form_id,
        issued.token,
    )


async def add_account(connector: Connector, account_id: str, **options: Any) -> int:
    account = await connector.db.write(
        extensions.add_account, connector.extension_id, account_id, connector.form_id, **options
    )
    return account.id


async def make_agent(
    client: Any, *, email: str = "agent@example.com", work_phone: str | None = "200"
) -> users.NewUser:
    return await db_of(client).write(
        users.add_user, email, "Ilya", "Laserson", work_phone=work_phone, password="secret-pass"
    )


async def upload(
    client: Any,
    connector: Connector,
    name: str = "photo.jpg",
    data: bytes = b"\xff\xd8 picture bytes",
) -> str:
    response = await client.post(
        "/v1/files/upload", headers=connector.headers, files={"file": (name, data)}
    )
    assert response.status_code == 200, response.text
    guid: str = response.json()["guid"]
    return guid
