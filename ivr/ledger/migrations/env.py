"""Alembic's environment for the ledger: always run from ivr.ledger.migrate.

ivr hands over an open connection (config.attributes["connection"]), so the
same code path migrates SQLite and PostgreSQL, from `ivr run` and from
`ivr ledger migrate`.  There is no alembic.ini and no offline mode.
"""

from __future__ import annotations

from alembic import context

from ivr.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
