"""Alembic environment: runs on a sync psycopg connection against every loaded model.

The kernel passes ``url`` in ``config.attributes``; version locations are assembled by
:mod:`core.migrate` from every installed skill, so every revision in the database has its script.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """When writing one skill's revision, compare only that skill's tables."""
    only = config.attributes.get("tables")
    if only is None or type_ != "table":
        return True
    return name in only


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        include_object=_include_object,
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
