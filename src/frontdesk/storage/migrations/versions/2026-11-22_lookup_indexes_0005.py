"""indexes: accounts by account_id alone, calls by recording

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_extension_accounts_account_id"), "extension_accounts", ["account_id"])
    op.create_index(op.f("ix_calls_record_file_id"), "calls", ["record_file_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_record_file_id"), table_name="calls")
    op.drop_index(op.f("ix_extension_accounts_account_id"), table_name="extension_accounts")
