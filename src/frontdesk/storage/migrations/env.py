"""Alembic environment: the connection is handed over by frontdesk.storage.migrate."""

from alembic import context

from frontdesk.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `frontdesk migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # ALTER TABLE on SQLite goes through table copies
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
