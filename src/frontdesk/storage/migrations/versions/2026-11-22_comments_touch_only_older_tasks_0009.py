"""comments touch only a task they make newer

The trigger of 0002 rewrote the task's row for every comment. A task made together with its
first comments already carries their time (a unit's rows share one time, Tx.now), so the
rewrite was a second write of a row just written: on PostgreSQL a dead row version per new
task, on SQLite a B-tree update. Now the task is updated only when the comment is newer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps times as ISO 8601 text of one form (+00:00, microseconds when nonzero): text
# order is time order
SQLITE_TRIGGER = """
CREATE TRIGGER comments_touch_task AFTER INSERT ON comments
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at
    WHERE id = NEW.task_id AND updated_at < NEW.created_at;
END
"""
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION comments_touch_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at
    WHERE id = NEW.task_id AND updated_at < NEW.created_at;
    RETURN NULL;
END
$$
"""
OLD_SQLITE_TRIGGER = """
CREATE TRIGGER comments_touch_task AFTER INSERT ON comments
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at WHERE id = NEW.task_id;
END
"""
OLD_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION comments_touch_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at WHERE id = NEW.task_id;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
    else:
        op.execute("DROP TRIGGER comments_touch_task")
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(OLD_POSTGRES_FUNCTION)
    else:
        op.execute("DROP TRIGGER comments_touch_task")
        op.execute(OLD_SQLITE_TRIGGER)
