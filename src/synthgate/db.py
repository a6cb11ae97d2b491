"""Engine, sessions and the migration entry point.

One set of models serves SQLite (the embedded default) and PostgreSQL; Alembic migrations under
``synthgate/migrations`` are the only way the schema changes.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from synthgate.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; busy_timeout makes writers queue instead
    # of failing; NORMAL sync is durable across process crashes in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# JSON columns are written in one canonical spelling (sorted keys, no spaces, UTF-8): the audit
# log's leaves commit to exactly that spelling, so verification hashes the stored text as it is
# instead of parsing and re-encoding every event.
_json_text = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def make_engine(settings: Settings) -> Engine:
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_json_text,
            pool_size=20,
            max_overflow=50,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_size=20,
        max_overflow=50,
        # No pre-ping: it would add a round trip to every checkout on the hot path; a dropped
        # connection surfaces as OperationalError (503 with Retry-After) and the pool replaces it.
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
        json_serializer=_json_text,
    )


class Database:
    """The engine plus a session factory; one per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Threads of one process that collide on its lock fall
        # into SQLite's busy handler, which sleeps in steps of up to 100 ms and gives a long,
        # unfair tail under load; taking turns on a Python lock first keeps the queue short and
        # fair. (Other processes still meet the busy timeout; PostgreSQL needs none of this.)
        self._turns: threading.RLock | None = (
            threading.RLock() if self.engine.dialect.name == "sqlite" else None
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        with self._turns if self._turns is not None else nullcontext():
            session = self.sessions()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def migrations_dir() -> Path:
    return Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", settings.effective_database_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (creating the database file when needed)."""
    from alembic import command

    if settings.effective_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)


def import_all_models() -> None:
    """Import every domain's models so ``Base.metadata`` is complete (Alembic, tests)."""
    from synthgate.audit import models as _audit  # noqa: F401
    from synthgate.cases import models as _cases  # noqa: F401
    from synthgate.consent import models as _consent  # noqa: F401
    from synthgate.gateway import models as _gateway  # noqa: F401
    from synthgate.governance import models as _governance  # noqa: F401
    from synthgate.identity import models as _identity  # noqa: F401
    from synthgate.moderation import models as _moderation  # noqa: F401
    from synthgate.operators import models as _operators  # noqa: F401
    from synthgate.provenance import models as _provenance  # noqa: F401
    from synthgate.rules import models as _rules  # noqa: F401
