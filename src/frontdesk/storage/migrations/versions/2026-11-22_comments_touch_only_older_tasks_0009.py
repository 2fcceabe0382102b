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

#: the task a new comment touches: since this revision, only one the comment is newer than.
#: (SQLite keeps times as ISO 8601 text of one form, +00:00, microseconds when nonzero: text
#: order is time order.)
NEWER = "id = NEW.task_id AND updated_at < NEW.created_at"
ANY = "id = NEW.task_id"


def _sqlite_trigger(where: str) -> str:
    return f"""
CREATE TRIGGER comments_touch_task AFTER INSERT ON comments
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at WHERE {where};
END
"""


def _postgres_function(where: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION comments_touch_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET updated_at = NEW.created_at WHERE {where};
    RETURN NULL;
END
$$
"""


def _touch_where(where: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_postgres_function(where))
    else:
        op.execute("DROP TRIGGER comments_touch_task")
        op.execute(_sqlite_trigger(where))


def upgrade() -> None:
    _touch_where(NEWER)


def downgrade() -> None:
    _touch_where(ANY)
