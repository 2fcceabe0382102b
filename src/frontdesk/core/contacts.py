"""A chat system's contacts: who writes in its chats, one record per (provider, contactId).

Each message carries the contact's details again; a detail that is sent replaces the one kept,
one that is left out (or empty) keeps it, so a message with only contactId forgets nothing.
The record is written only when a detail changed: the message's own query reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from frontdesk.core.clock import utcnow
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import Timestamp, planfix_contacts


@dataclass(slots=True)  # made per request (docs/decisions.md)
class Contact:
    """The contact fields of a Planfix newMessage (None: not sent)."""

    external_id: str
    first_name: str | None = None
    last_name: str | None = None
    avatar_url: str | None = None
    email: str | None = None
    phone: str | None = None
    data: str | None = None

    def details(self) -> tuple[str | None, ...]:
        """The values of DETAILS, in its order."""
        return (
            self.first_name,
            self.last_name,
            self.avatar_url,
            self.email,
            self.phone,
            self.data,
        )

    @property
    def display_name(self) -> str | None:
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or None


#: the detail columns, in the order of Contact.details()
DETAILS = ("first_name", "last_name", "avatar_url", "email", "phone", "data")
CONTACT_COLUMNS = tuple(planfix_contacts.c[name] for name in DETAILS)

# The same ON CONFLICT spelling works on SQLite (>= 3.24) and PostgreSQL.
UPSERT_CONTACT = Query(
    sa.text(
        "INSERT INTO planfix_contacts (planfix_ref, external_id, "
        + ", ".join(DETAILS)
        + ", created_at, updated_at) VALUES (:planfix_ref, :external_id, "
        + ", ".join(f":{name}" for name in DETAILS)
        + ", :now, :now) ON CONFLICT (planfix_ref, external_id) DO UPDATE SET "
        + ", ".join(
            f"{name} = COALESCE(excluded.{name}, planfix_contacts.{name})" for name in DETAILS
        )
        + ", updated_at = excluded.updated_at RETURNING id"
    )
    .bindparams(
        sa.bindparam("planfix_ref", type_=sa.BigInteger),
        sa.bindparam("external_id", type_=sa.String),
        *(sa.bindparam(name, type_=sa.Text) for name in DETAILS),
        sa.bindparam("now", type_=Timestamp),
    )
    .columns(sa.column("id", sa.BigInteger))
)


def _unchanged(contact: Contact, stored: Row) -> bool:
    """Nothing sent differs from what is kept (the row holds the columns of DETAILS)."""
    sent = zip(DETAILS, contact.details(), strict=True)
    return all(value is None or value == stored[name] for name, value in sent)


async def keep_contact(tx: Tx, planfix_ref: int, contact: Contact, stored: Row | None) -> int:
    """The contact's id, recorded or brought up to date. `stored` is its row as read with the
    message (None: not recorded yet), holding `contact_ref` and the columns of DETAILS."""
    if stored is not None and _unchanged(contact, stored):
        return int(stored["contact_ref"])
    row = await tx.one(
        UPSERT_CONTACT,
        planfix_ref=planfix_ref,
        external_id=contact.external_id,
        **dict(zip(DETAILS, contact.details(), strict=True)),
        now=utcnow(),
    )
    assert row is not None
    return int(row["id"])
