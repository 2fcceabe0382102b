"""partial indexes of optional references

A Pyrus channel has no Planfix integration, a Planfix chat no extension account, and most
calls no recording; their index entries for NULL were writes that no lookup reads (each
lookup compares the column with a value, which a partial index WHERE col IS NOT NULL serves).
A new conversation writes one index entry fewer, a new call two.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, table, columns, unique, the column that may be NULL)
INDEXES = (
    (
        "ix_channels_account_ref_kind_key_chat_generation",
        "channels",
        ["account_ref", "kind", "key", "chat_generation"],
        True,
        "account_ref",
    ),
    (
        "ix_channels_planfix_ref_key_chat_generation",
        "channels",
        ["planfix_ref", "key", "chat_generation"],
        True,
        "planfix_ref",
    ),
    ("ix_calls_record_file_id", "calls", ["record_file_id"], False, "record_file_id"),
)


def _recreate(partial: bool) -> None:
    for name, table, columns, unique, optional in INDEXES:
        op.drop_index(name, table_name=table)
        where = sa.text(f"{optional} IS NOT NULL") if partial else None
        op.create_index(
            name, table, columns, unique=unique, sqlite_where=where, postgresql_where=where
        )


def upgrade() -> None:
    _recreate(partial=True)


def downgrade() -> None:
    _recreate(partial=False)
