"""deliveries: partial indexes of open rows

The worker looks for the oldest open row of each ordering key; with the history of sent rows
growing, full indexes made that a scan (650 deliveries/s against a bare client's 13,000 with
20,000 rows queued). Partial indexes hold only pending and sending rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status IN ('pending', 'sending')")


def upgrade() -> None:
    op.drop_index("ix_deliveries_status_next_attempt_at", table_name="deliveries")
    op.drop_index("ix_deliveries_ordering_key_id", table_name="deliveries")
    op.create_index(
        "ix_deliveries_open_id", "deliveries", ["id"], sqlite_where=OPEN, postgresql_where=OPEN
    )
    op.create_index(
        "ix_deliveries_open_ordering_key_id",
        "deliveries",
        ["ordering_key", "id"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    # sending rows: the lease's end is when they fall due again
    op.execute(
        "UPDATE deliveries SET next_attempt_at = lease_until "
        "WHERE status = 'sending' AND lease_until IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_open_ordering_key_id", table_name="deliveries")
    op.drop_index("ix_deliveries_open_id", table_name="deliveries")
    op.create_index(
        "ix_deliveries_status_next_attempt_at", "deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_deliveries_ordering_key_id", "deliveries", ["ordering_key", "id"])
