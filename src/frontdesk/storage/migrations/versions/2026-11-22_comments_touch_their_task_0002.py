"""comments touch their task

A new comment marks its task as just active (tasks.updated_at, the inbox order) in the
database itself: on PostgreSQL that saves a round trip per message, the costliest part of
receiving one (docs/decisions.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGER = """
CREATE TRIGGER comments_touch_task AFTER INSERT ON comments
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at WHERE id = NEW.task_id;
END
"""
POSTGRES_FUNCTION = """
CREATE FUNCTION comments_touch_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at WHERE id = NEW.task_id;
    RETURN NULL;
END
$$
"""
POSTGRES_TRIGGER = """
CREATE TRIGGER comments_touch_task AFTER INSERT ON comments
FOR EACH ROW EXECUTE FUNCTION comments_touch_task()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER comments_touch_task"
        + (" ON comments" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION comments_touch_task()")
