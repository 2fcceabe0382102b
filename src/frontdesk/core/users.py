"""Users: the agents who answer. A PBX finds them by their work phone."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.core.credentials import hash_password, new_secret, token_hash
from frontdesk.errors import FrontdeskError, NotFound
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import users

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(slots=True)  # made per request (docs/decisions.md)
class Person:
    """A user as the protocols show them (`responsible_person`)."""

    user_id: int
    first_name: str
    last_name: str
    work_phone: str | None


@dataclass(frozen=True)
class Member:
    """A user as the API v4 member list and profile show them."""

    user_id: int
    first_name: str
    last_name: str
    email: str
    work_phone: str | None


@dataclass(frozen=True)
class NewUser:
    user_id: int
    email: str
    security_key: str


def phone_digits(phone: str | None) -> str | None:
    """A phone number reduced to its digits: '+7 (933) 876-20-30' and '79338762030' match."""
    digits = re.sub(r"\D", "", phone or "")
    return digits or None


_PERSON = (users.c.id, users.c.first_name, users.c.last_name, users.c.work_phone)
USER_BY_EMAIL = Query(sa.select(users.c.id).where(users.c.email == p("email")))
USER_BY_ID = Query(sa.select(*_PERSON).where(users.c.id == p("id")))
_MEMBER = (*_PERSON, users.c.email)
MEMBERS = Query(sa.select(*_MEMBER).order_by(users.c.id))
MEMBER_BY_ID = Query(sa.select(*_MEMBER).where(users.c.id == p("id")))
INSERT_USER = Query(
    sa.insert(users)
    .values(
        email=p("email"),
        first_name=p("first_name"),
        last_name=p("last_name"),
        work_phone=p("work_phone"),
        phone_digits=p("phone_digits"),
        password_hash=p("password_hash"),
        security_key_hash=p("security_key_hash"),
        key_generation=1,
        created_at=p("now"),
    )
    .returning(users.c.id)
)


def _person(row: dict[str, object]) -> Person:
    return Person(row["id"], row["first_name"], row["last_name"], row["work_phone"])  # type: ignore[arg-type]


async def add_user(
    tx: Tx,
    email: str,
    first_name: str,
    last_name: str,
    *,
    work_phone: str | None = None,
    password: str | None = None,
    security_key: str | None = None,
) -> NewUser:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise FrontdeskError("validation_error", f"Not an e-mail address: {email!r}")
    if await tx.one(USER_BY_EMAIL, email=email) is not None:
        raise FrontdeskError("conflict", f"A user with e-mail {email} already exists", 409)
    security_key = security_key or new_secret(24)
    row = await tx.one(
        INSERT_USER,
        email=email,
        first_name=first_name,
        last_name=last_name,
        work_phone=work_phone,
        phone_digits=phone_digits(work_phone),
        password_hash=hash_password(password) if password else None,
        security_key_hash=token_hash(security_key),
        now=utcnow(),
    )
    assert row is not None
    return NewUser(row["id"], email, security_key)


async def get_person(tx: Tx, user_id: int) -> Person:
    row = await tx.one(USER_BY_ID, id=user_id)
    if row is None:
        raise NotFound(f"No user {user_id}")
    return _person(row)


def _member(row: Row) -> Member:
    return Member(row["id"], row["first_name"], row["last_name"], row["email"], row["work_phone"])


async def list_members(tx: Tx) -> list[Member]:
    """Every user, oldest first: Frontdesk is one organisation, and every user is an agent."""
    return [_member(row) for row in await tx.all(MEMBERS)]


async def get_member(tx: Tx, user_id: int) -> Member:
    row = await tx.one(MEMBER_BY_ID, id=user_id)
    if row is None:
        raise NotFound(f"No member {user_id}")
    return _member(row)


ROTATE_KEY = Query(
    sa.update(users)
    .where(users.c.id == p("id"))
    .values(security_key_hash=p("key_hash"), key_generation=users.c.key_generation + 1)
)


async def rotate_security_key(tx: Tx, user_id: int) -> str:
    """A new API v4 security key; every token issued with the old one is revoked."""
    key = new_secret(24)
    if not await tx.run(ROTATE_KEY, id=user_id, key_hash=token_hash(key)):
        raise NotFound(f"No user {user_id}")
    return key
