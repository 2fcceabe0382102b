"""channels by task

An answer to the customer finds the chats of its task (core.replies, core.planfix_answers),
and deleting a task cascades to its channels: without an index each of those read the whole
channels table, a full scan per agent answer that grew with every conversation ever had.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_channels_task_id"), "channels", ["task_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_channels_task_id"), table_name="channels")
