"""channels: a conversation's channels are numbered (unique account, kind, key, generation)

A new conversation claims the next generation of its key instead of taking a lock and reading
again: on PostgreSQL that made a new chat two round trips dearer (see core.channels). The
Planfix chats' generation column serves Pyrus conversations too; existing channels keep NULL
(never a conflict), the next one of their key claims generation 1.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_channels_account_ref_kind_key", table_name="channels")
    op.create_index(
        "ix_channels_account_ref_kind_key_chat_generation",
        "channels",
        ["account_ref", "kind", "key", "chat_generation"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_channels_account_ref_kind_key_chat_generation", table_name="channels")
    op.create_index("ix_channels_account_ref_kind_key", "channels", ["account_ref", "kind", "key"])
