"""A local stand-in for Athena: DuckDB views over exactly the partitions the Glue catalog lists."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb

logger = logging.getLogger(__name__)

#: Hive's marker for a NULL partition value.
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"

_SIMPLE_TYPES = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}
_DECIMAL = re.compile(r"^decimal\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_LENGTH = re.compile(r"^(varchar|char)\s*\(\s*\d+\s*\)$")


def duckdb_type(hive_type: str) -> str | None:
    """Map a Hive / Glue column type to the DuckDB type Athena's result would have.

    Parameters
    ----------
    hive_type
        A Glue catalog type such as ``bigint``, ``decimal(12,2)`` or ``varchar(10)``.

    Returns
    -------
    str or None
        The DuckDB type, or ``None`` for complex types (``array<...>``, ``struct<...>``,
        ``map<...>``), which are passed through uncast.
    """
    t = hive_type.strip().lower()
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t]
    m = _LENGTH.match(t)
    if m:
        return "VARCHAR"
    m = _DECIMAL.match(t)
    if m:
        precision = int(m.group(1) or 10)
        scale = int(m.group(2) or 0)
        return f"DECIMAL({precision},{scale})"
    return None


def duckdb_null_type(hive_type: str) -> str:
    """The DuckDB type of a column that no file backs (a typed NULL): complex Hive types
    (``array<struct<rule:string>>``) become DuckDB's (``STRUCT("rule" VARCHAR)[]``), so that
    UNNEST and field access work on an empty table as they would in Athena."""
    t = hive_type.strip()
    simple = duckdb_type(t)
    if simple is not None:
        return simple
    lower = t.lower()
    if lower.startswith("array<") and t.endswith(">"):
        return f"{duckdb_null_type(t[6:-1])}[]"
    if lower.startswith("map<") and t.endswith(">"):
        key, value = _split_top_level(t[4:-1])
        return f"MAP({duckdb_null_type(key)}, {duckdb_null_type(value)})"
    if lower.startswith("struct<") and t.endswith(">"):
        fields = []
        for field in _split_top_level(t[7:-1]):
            name, _, ftype = field.partition(":")
            fields.append(f"{quote_ident(name.strip())} {duckdb_null_type(ftype)}")
        return f"STRUCT({', '.join(fields)})"
    return "VARCHAR"


def _split_top_level(text: str) -> list[str]:
    """Split at the commas that are not inside angle brackets or parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str | None, hive_type: str) -> str:
    """A typed SQL literal for one partition value."""
    target = duckdb_type(hive_type) or "VARCHAR"
    if value is None or value == HIVE_DEFAULT_PARTITION:
        return f"CAST(NULL AS {target})"
    return "CAST('" + value.replace("'", "''") + f"' AS {target})"


def local_path(location: str) -> Path | None:
    """Turn a catalog ``Location`` (plain path or ``file:`` URI) into a local directory path.

    Parameters
    ----------
    location
        ``/abs/dir``, ``file:///abs/dir`` or Hadoop-style ``file:/abs/dir``.

    Returns
    -------
    Path or None
        The local path, or ``None`` when the location uses another scheme (``s3://``...).
    """
    parsed = urlparse(location)
    if parsed.scheme == "file":
        path = Path(parsed.path)
        if not path.exists() and Path(unquote(parsed.path)).exists():
            path = Path(unquote(parsed.path))
        return path
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a plain path (or a Windows drive)
        return Path(location)
    return None


def parquet_files(directory: Path) -> list[Path]:
    """List the Parquet files Athena would read below a table or partition location.

    Like Athena, files and directories whose name starts with ``_`` or ``.`` (``_SUCCESS``,
    ``_temporary/``, ``.crc`` files) are ignored; sub-directories are read recursively.
    """
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        return []
    out: list[Path] = []
    for path in sorted(directory.rglob("*.parquet")):
        parts = path.relative_to(directory).parts
        if path.is_file() and not any(p.startswith(("_", ".")) for p in parts):
            out.append(path)
    return out


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


class LocalAthena:
    """Answer SQL over the curated tables the way Athena sees them through the Glue catalog.

    Every Glue database becomes a DuckDB schema and every table a view, so queries use
    ``database.table`` names. Only partitions registered in the catalog are visible; their
    partition columns carry the catalog's ``Values``, typed as the catalog's partition keys.

    Parameters
    ----------
    glue_client
        A boto3 Glue client (moto's in tests and local runs).
    databases
        Glue databases to expose; default: every database in the catalog.
    location_mapper
        Optional function turning a catalog ``Location`` into a local path, for catalogs
        that point at ``s3://`` locations mirrored on disk. Default: :func:`local_path`.
    """

    def __init__(
        self,
        glue_client: Any,
        databases: list[str] | None = None,
        *,
        location_mapper: Callable[[str], Path | None] | None = None,
    ) -> None:
        self.glue = glue_client
        self.databases = list(databases) if databases is not None else None
        self.location_mapper = location_mapper or local_path
        self._con = duckdb.connect()
        self._refreshed = False
        self._tables: list[str] = []

    # -- catalog -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Rebuild every schema and view from the current state of the Glue catalog.

        File lists are taken now: call again after a job run added or replaced files.
        """
        self._con.close()
        self._con = duckdb.connect()
        try:
            self._con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error:  # pragma: no cover - only without the ICU extension
            logger.debug("could not set the DuckDB time zone to UTC")
        names = self.databases
        if names is None:
            names = [d["Name"] for d in _paginate(self.glue, "get_databases", "DatabaseList")]
        tables: list[str] = []
        for database in names:
            try:
                # a name DuckDB also uses for a catalog is ambiguous in every query: find out now
                self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(database)}")
                self._con.execute(f"CREATE OR REPLACE VIEW {quote_ident(database)}._lake_probe AS SELECT 1 AS x")
                self._con.execute(f"SELECT x FROM {quote_ident(database)}._lake_probe")
                self._con.execute(f"DROP VIEW {quote_ident(database)}._lake_probe")
            except duckdb.Error as exc:  # system, temp, memory, information_schema, pg_catalog
                logger.warning("Glue database %s is left out: DuckDB keeps the name for itself (%s)",
                               database, str(exc).splitlines()[0])
                continue
            for table in _paginate(self.glue, "get_tables", "TableList", DatabaseName=database):
                sql = self._view_sql(database, table)
                if sql is None:
                    continue
                self._con.execute(
                    f"CREATE OR REPLACE VIEW {quote_ident(database)}.{quote_ident(table['Name'])} "
                    f"AS {sql}"
                )
                tables.append(f"{database}.{table['Name']}")
        self._tables = tables
        self._refreshed = True
        logger.info("local Athena: %d table(s) from %d database(s)", len(tables), len(names))

    def tables(self) -> list[str]:
        """Return the ``database.table`` names visible after the last refresh."""
        self._ensure_refreshed()
        return list(self._tables)

    def _view_sql(self, database: str, table: Mapping[str, Any]) -> str | None:
        name = table["Name"]
        sd = table.get("StorageDescriptor") or {}
        if table.get("TableType") == "VIRTUAL_VIEW":
            logger.info("skipping %s.%s: catalog views are not supported locally", database, name)
            return None
        if not _is_parquet(sd, table.get("Parameters") or {}):
            logger.warning("skipping %s.%s: not a Parquet table", database, name)
            return None
        columns = [(c["Name"], c.get("Type", "string")) for c in sd.get("Columns", [])]
        keys = [(k["Name"], k.get("Type", "string")) for k in table.get("PartitionKeys") or []]
        selects: list[str] = []
        if not keys:
            files = self._files(sd.get("Location"))
            if files:
                selects.append(self._select(files, columns, []))
        else:
            partitions = _paginate(
                self.glue, "get_partitions", "Partitions", DatabaseName=database, TableName=name
            )
            for part in partitions:
                values = list(part.get("Values", []))
                if len(values) != len(keys):
                    logger.warning("skipping partition %s of %s.%s: %d values for %d keys",
                                   values, database, name, len(values), len(keys))
                    continue
                location = (part.get("StorageDescriptor") or {}).get("Location")
                if not location and sd.get("Location"):
                    suffix = "/".join(f"{k}={v}" for (k, _), v in zip(keys, values, strict=True))
                    location = sd["Location"].rstrip("/") + "/" + suffix
                files = self._files(location)
                if files:
                    literals = [(k, _literal(v, t)) for (k, t), v in zip(keys, values, strict=True)]
                    selects.append(self._select(files, columns, literals))
        if not selects:
            return _empty_select(columns, keys)
        return "\nUNION ALL\n".join(selects)

    def _files(self, location: str | None) -> list[Path]:
        if not location:
            return []
        path = self.location_mapper(location)
        if path is None:
            logger.warning("cannot read location %s locally", location)
            return []
        files = parquet_files(path)
        if not files:
            logger.debug("no Parquet files under %s", location)
        return files

    @staticmethod
    def _select(
        files: Sequence[Path], columns: Sequence[tuple[str, str]], literals: Sequence[tuple[str, str]]
    ) -> str:
        import pyarrow.parquet as pq

        present: set[str] = set()
        for f in files:
            present.update(n.lower() for n in pq.read_schema(f).names)
        items: list[str] = []
        for col, hive_type in columns:
            target = duckdb_type(hive_type)
            if col.lower() not in present:  # added after these files were written
                items.append(f"CAST(NULL AS {duckdb_null_type(hive_type)}) AS {quote_ident(col)}")
            elif target is None:
                items.append(quote_ident(col))
            else:
                items.append(f"CAST({quote_ident(col)} AS {target}) AS {quote_ident(col)}")
        items.extend(f"{lit} AS {quote_ident(key)}" for key, lit in literals)
        file_list = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        return (
            f"SELECT {', '.join(items) or '1 AS _'} FROM read_parquet([{file_list}], "
            "union_by_name = true, hive_partitioning = false)"
        )

    # -- queries -------------------------------------------------------------------------

    def _ensure_refreshed(self) -> None:
        if not self._refreshed:
            self.refresh()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a SQL statement and return all result rows.

        Parameters
        ----------
        sql
            DuckDB SQL; tables are named ``database.table`` as in Athena.

        Returns
        -------
        list[tuple]
            The result rows (``datetime.date``, ``Decimal``, ... values).
        """
        return self.query_with_header(sql)[1]

    def query_with_header(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a SQL statement and return its column names and rows."""
        self._ensure_refreshed()
        cursor = self._con.execute(sql)
        header = [d[0] for d in cursor.description or []]
        return header, cursor.fetchall()

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def __enter__(self) -> LocalAthena:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        """Render a result as a plain-text table; see :func:`format_table`."""
        return format_table(header, rows)


def _is_parquet(sd: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    hints = [
        str(sd.get("InputFormat") or ""),
        str(sd.get("OutputFormat") or ""),
        str((sd.get("SerdeInfo") or {}).get("SerializationLibrary") or ""),
        str(params.get("classification") or ""),
    ]
    hints = [h.lower() for h in hints if h]
    return not hints or any("parquet" in h for h in hints)


def _empty_select(columns: Sequence[tuple[str, str]], keys: Sequence[tuple[str, str]]) -> str:
    items = [
        f"CAST(NULL AS {duckdb_null_type(t)}) AS {quote_ident(n)}"
        for n, t in [*columns, *keys]
    ]
    return f"SELECT {', '.join(items) or '1 AS _'} WHERE false"


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 40) -> str:
    """Render query results as a small plain-text table.

    Parameters
    ----------
    header
        Column names.
    rows
        Result rows; ``None`` prints as ``NULL``.
    max_width
        Longer cell values are cut and end in ``...``.

    Returns
    -------
    str
        The table, numbers right-aligned, followed by a ``(n rows)`` line.
    """
    def clip(text: str) -> str:
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    cells = [[clip(_cell(v)) for v in row] for row in rows]
    names = [clip(str(h)) for h in header]
    widths = [len(n) for n in names]
    for row in cells:
        for i, text in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(text))
    numeric = [
        bool(rows) and all(
            isinstance(r[i], int | float | Decimal) and not isinstance(r[i], bool)
            for r in rows if r[i] is not None
        )
        for i in range(len(widths))
    ]
    lines = [
        " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
        "-+-".join("-" * w for w in widths),
    ]
    for row in cells:
        parts = [
            text.rjust(w) if num else text.ljust(w)
            for text, w, num in zip(row, widths, numeric, strict=False)
        ]
        lines.append(" | ".join(parts).rstrip())
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)
