"""Alembic's entry point, run by `satgate.control_plane.migrate` on a connection it lends (never from alembic.ini):
the same code upgrades SQLite and PostgreSQL, inside the caller's transaction."""

from alembic import context

from satgate.control_plane.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
