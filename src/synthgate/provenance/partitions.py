"""Time partitions on PostgreSQL, so retention drops a month of records instead of deleting rows.

A table opts in with ``__table_args__ = {"postgresql_partition_by": "RANGE (created_at)"}``; SQLite
ignores the option and keeps a plain table (its purge deletes rows, which is cheap at its scale).
On PostgreSQL:

- the primary key of a partitioned table must contain the partition key, so the DDL compiler adds
  ``created_at`` to it (the models keep ``id`` as the key: ``id`` stays unique by construction);
- every partitioned table gets a DEFAULT partition and monthly partitions around the current
  month when it is created — also by Alembic's ``op.create_table``, which fires the same
  ``after_create`` event — so an insert never finds no partition;
- :func:`ensure_partitions` (a daily job) creates the coming months ahead of time, and
  :func:`drop_expired` detaches nothing and deletes nothing: it drops whole months.

Partitions live in their own schema, ``synthgate_partitions``: the application and Alembic's
model comparison only ever see the parent tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import PrimaryKeyConstraint, Table, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler

SCHEMA = "synthgate_partitions"
MONTHS_AHEAD = 3
"""Monthly partitions kept ready beyond the current month (the daily job tops them up)."""
log = structlog.get_logger("synthgate.partitions")


def partition_key(table: Table) -> str | None:
    """The column a table is range-partitioned by on PostgreSQL, or None."""
    spec = table.dialect_options["postgresql"].get("partition_by")
    if not spec:
        return None
    inner = str(spec).split("(", 1)[1].rsplit(")", 1)[0]
    return inner.strip()


def _with_partition_key(constraint: PrimaryKeyConstraint, compiler: DDLCompiler, keyword: str) -> str | None:
    """The constraint's DDL with the partition key appended, or None when it needs no change:
    PostgreSQL demands the key in the primary key of a partitioned table (unique constraints name
    it themselves in the models)."""
    table = constraint.table
    key = partition_key(table) if isinstance(table, Table) else None
    if key is None or key in constraint.columns or not len(constraint.columns):
        return None
    columns = ", ".join(compiler.preparer.quote(c.name) for c in constraint.columns)
    name = compiler.preparer.format_constraint(constraint) if constraint.name else None
    prefix = f"CONSTRAINT {name} " if name else ""
    return f"{prefix}{keyword} ({columns}, {compiler.preparer.quote(key)})"


@compiles(PrimaryKeyConstraint, "postgresql")
def _primary_key(constraint: PrimaryKeyConstraint, compiler: DDLCompiler, **kw: Any) -> str:
    ddl = _with_partition_key(constraint, compiler, "PRIMARY KEY")
    return ddl if ddl is not None else compiler.visit_primary_key_constraint(constraint, **kw)


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _partition_name(table: str, month: dt.date) -> str:
    return f"{table}_p{month:%Y_%m}"


def _create_month(conn: Connection, table: str, month: dt.date) -> bool:
    name = _partition_name(table, month)
    exists = conn.execute(text("SELECT to_regclass(:n)"), {"n": f"{SCHEMA}.{name}"}).scalar()
    if exists is not None:
        return False
    start, end = month, _next_month(month)
    conn.execute(
        text(
            f'CREATE TABLE "{SCHEMA}"."{name}" PARTITION OF "{table}" '
            f"FOR VALUES FROM ('{start.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
        )
    )
    return True


def partitioned_tables(conn: Connection) -> list[str]:
    """Names of the partitioned parents in the current schema."""
    return list(
        conn.execute(
            text(
                "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "ORDER BY c.relname"
            )
        ).scalars()
    )


def ensure_partitions(
    conn: Connection,
    *,
    tables: list[str] | None = None,
    start: dt.date | None = None,
    today: dt.date | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> list[str]:
    """Create the monthly partitions from ``start`` (default: last month) to ``months_ahead`` after
    the current month. Returns the names created; a no-op on SQLite."""
    if conn.dialect.name != "postgresql":
        return []
    today = today or dt.datetime.now(dt.UTC).date()
    month = _month(start) if start else _month(_month(today) - dt.timedelta(days=1))
    last = _month(today)
    for _ in range(months_ahead):
        last = _next_month(last)
    created: list[str] = []
    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    for table in tables if tables is not None else partitioned_tables(conn):
        m = month
        while m <= last:
            try:
                with conn.begin_nested():
                    if _create_month(conn, table, m):
                        created.append(_partition_name(table, m))
            except DBAPIError:
                # Rows of that month already sit in the DEFAULT partition (the job was off for
                # months): they stay there, and are purged row by row.
                log.warning("partitions.create_failed", table=table, month=m.isoformat())
            m = _next_month(m)
    return created


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    start: dt.datetime
    end: dt.datetime


def month_partitions(conn: Connection, table: str) -> list[Partition]:
    """The monthly partitions of ``table`` (not the default one), oldest first."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = to_regclass(:t) AND n.nspname = :s"
        ),
        {"t": table, "s": SCHEMA},
    ).all()
    found: list[Partition] = []
    for name, bound in rows:
        if not bound.startswith("FOR VALUES FROM"):
            continue  # the DEFAULT partition
        start_text, end_text = bound.split("'")[1], bound.split("'")[3]
        found.append(
            Partition(
                table,
                name,
                dt.datetime.fromisoformat(start_text).astimezone(dt.UTC),
                dt.datetime.fromisoformat(end_text).astimezone(dt.UTC),
            )
        )
    return sorted(found, key=lambda p: p.start)


def detach_partition(conn: Connection, partition: Partition) -> str:
    """Detach one month (its rows stay in a plain table, returned by qualified name); rows of that
    month inserted afterwards land in the DEFAULT partition."""
    conn.execute(text(f'ALTER TABLE "{partition.table}" DETACH PARTITION "{SCHEMA}"."{partition.name}"'))
    return f'"{SCHEMA}"."{partition.name}"'


def drop_partition(conn: Connection, partition: Partition) -> int:
    """Drop one month; returns how many rows it held (counted first, for the purge record)."""
    rows = conn.execute(text(f'SELECT count(*) FROM "{SCHEMA}"."{partition.name}"')).scalar_one()
    conn.execute(text(f'DROP TABLE "{SCHEMA}"."{partition.name}"'))
    return int(rows)


@event.listens_for(Table, "after_create")
def _after_create(table: Table, connection: Connection, **_: Any) -> None:
    """Give a new partitioned table its DEFAULT partition and the months around now."""
    if connection.dialect.name != "postgresql" or partition_key(table) is None:
        return
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    default = f'"{SCHEMA}"."{table.name}_default"'
    connection.execute(text(f'CREATE TABLE IF NOT EXISTS {default} PARTITION OF "{table.name}" DEFAULT'))
    ensure_partitions(connection, tables=[table.name], months_ahead=MONTHS_AHEAD)
