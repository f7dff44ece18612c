"""Alembic environment: uses the connection `analyst.db.upgrade` hands in, or the configured database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from analyst.db import Base, make_engine


def load_models() -> MetaData:
    """Every domain's tables: importing their models registers them with `Base.metadata`."""
    from analyst.accounting import models as _accounting  # noqa: F401
    from analyst.collectors import models as _collectors  # noqa: F401
    from analyst.console import models as _console  # noqa: F401
    from analyst.events import models as _events  # noqa: F401
    from analyst.jobs import models as _jobs  # noqa: F401
    from analyst.printers import models as _printers  # noqa: F401
    from analyst.terminals import models as _terminals  # noqa: F401
    from analyst.users import models as _users  # noqa: F401

    return Base.metadata


target_metadata = load_models()


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things, so later migrations must copy-and-move tables.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # Run by hand (`alembic -c …`): take the database from the analyst's own configuration.
    from analyst.config import AnalystConfig
    from pullprint.config import load

    settings = load(AnalystConfig, "analyst")
    url = context.config.get_main_option("sqlalchemy.url") or settings.db_url
    engine = make_engine(url, settings.db_password)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the analyst's migrations run online only (pullprint analyst does it at start)")
run_migrations_online()
