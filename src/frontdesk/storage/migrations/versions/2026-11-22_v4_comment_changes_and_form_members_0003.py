"""v4: comment actions and changes, form members

API v4 comments carry what they did to the task (finished/reopened, reassigned, field
updates); form members decide who sees a form's tasks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # plain ADD COLUMN, not batch mode: a SQLite batch would rebuild comments and drop the
    # comments_touch_task trigger of 0002
    op.add_column("comments", sa.Column("action", sa.String(length=20), nullable=True))
    op.add_column("comments", sa.Column("changes", sa.JSON(), nullable=True))
    op.create_table(
        "form_members",
        sa.Column("form_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["forms.id"],
            name=op.f("fk_form_members_form_id_forms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_form_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("form_id", "user_id", name=op.f("pk_form_members")),
    )
    op.create_index(op.f("ix_form_members_user_id"), "form_members", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_form_members_user_id"), table_name="form_members")
    op.drop_table("form_members")
    op.drop_column("comments", "changes")
    op.drop_column("comments", "action")
