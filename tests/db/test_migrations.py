"""The models and the Alembic history agree, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from synthgate.db import Base, import_all_models
from synthgate.gateway.sdk import Gateway


def test_migrations_match_models(gateway: Gateway) -> None:
    import_all_models()
    with gateway.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models changed without a migration: {diff}"
