"""Planfix chats: integrations, contacts, chat channels, attachment fetches, server keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def _integrations() -> None:
    op.create_table(
        "planfix_integrations",
        sa.Column("id", BigId, sa.Identity(always=False), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("provider_url", sa.String(length=2000), nullable=True),
        sa.Column("provider_token", sa.String(length=500), nullable=False),
        sa.Column("form_id", BigId, nullable=False),
        sa.Column("default_agent_id", BigId, nullable=True),
        sa.Column("routing", sa.String(length=20), nullable=False),
        sa.Column("public_base_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_planfix_integrations_form_id_forms")
        ),
        sa.ForeignKeyConstraint(
            ["default_agent_id"],
            ["users.id"],
            name=op.f("fk_planfix_integrations_default_agent_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planfix_integrations")),
        sa.UniqueConstraint("provider_id", name=op.f("uq_planfix_integrations_provider_id")),
    )


def _contacts() -> None:
    op.create_table(
        "planfix_contacts",
        sa.Column("id", BigId, sa.Identity(always=False), nullable=False),
        sa.Column("planfix_ref", BigId, nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("avatar_url", sa.String(length=2000), nullable=True),
        sa.Column("email", sa.String(length=300), nullable=True),
        sa.Column("phone", sa.String(length=100), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["planfix_ref"],
            ["planfix_integrations.id"],
            name=op.f("fk_planfix_contacts_planfix_ref_planfix_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planfix_contacts")),
        sa.UniqueConstraint(
            "planfix_ref", "external_id", name=op.f("uq_planfix_contacts_planfix_ref_external_id")
        ),
    )


def _add_reference(table: str, column: str, target: str) -> None:
    """A nullable foreign-key column. SQLite cannot add a constraint to a table, only a
    column with an inline REFERENCES; a batch rebuild is not an option (see 0003)."""
    name = f"fk_{table}_{column}_{target}"
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if column in {c["name"] for c in sa.inspect(bind).get_columns(table)}:
            return  # left by a downgrade (below)
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} INTEGER "
            f"CONSTRAINT {name} REFERENCES {target} (id)"
        )
        return
    op.add_column(table, sa.Column(column, BigId, nullable=True))
    op.create_foreign_key(op.f(name), table, target, [column], ["id"])


def _chat_channels() -> None:
    _add_reference("channels", "planfix_ref", "planfix_integrations")
    _add_reference("channels", "contact_ref", "planfix_contacts")
    op.add_column("channels", sa.Column("chat_generation", sa.Integer(), nullable=True))
    op.create_index(
        op.f("ix_channels_planfix_ref_key_chat_generation"),
        "channels",
        ["planfix_ref", "key", "chat_generation"],
        unique=True,
    )


def _fetches() -> None:
    op.create_table(
        "attachment_fetches",
        sa.Column("id", BigId, sa.Identity(always=False), nullable=False),
        sa.Column("comment_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("lease_until", Timestamp, nullable=True),
        sa.Column("file_id", BigId, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_attachment_fetches_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_attachment_fetches_file_id_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment_fetches")),
    )
    op.create_index(
        op.f("ix_attachment_fetches_status_next_attempt_at"),
        "attachment_fetches",
        ["status", "next_attempt_at"],
    )
    op.create_index(op.f("ix_attachment_fetches_comment_id"), "attachment_fetches", ["comment_id"])


def upgrade() -> None:
    _integrations()
    _contacts()
    _chat_channels()
    _fetches()
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_keys")),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
    op.drop_index(op.f("ix_attachment_fetches_comment_id"), table_name="attachment_fetches")
    op.drop_index(
        op.f("ix_attachment_fetches_status_next_attempt_at"), table_name="attachment_fetches"
    )
    op.drop_table("attachment_fetches")
    op.drop_index(op.f("ix_channels_planfix_ref_key_chat_generation"), table_name="channels")
    op.drop_column("channels", "chat_generation")
    # (SQLite >= 3.35 drops a column; one with a foreign key only by a table rebuild, which
    # this downgrade does not do: there, leave the two columns in place)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_column("channels", "contact_ref")
        op.drop_column("channels", "planfix_ref")
    op.drop_table("planfix_contacts")
    op.drop_table("planfix_integrations")
