"""The Glue Data Catalog: create or evolve tables and register partitions, no crawler."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

PARQUET_SD = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                  "Parameters": {"serialization.format": "1"}},
    "Compressed": True,
}


class SchemaConflict(RuntimeError):
    """The catalog table has a column with a type the job would not write."""


@dataclass(frozen=True)
class TableSpec:
    """What the catalog should say about one table."""

    database: str
    name: str
    location: str
    columns: tuple[tuple[str, str], ...]  # (name, Hive type) of the data columns
    partition_keys: tuple[tuple[str, str], ...]
    description: str = ""


def _cols(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Name": n, "Type": t} for n, t in pairs]


def check_table(glue: Any, spec: TableSpec) -> dict[str, Any] | None:
    """The catalog's table when ``spec`` can be written to it, None when it does not exist yet.

    Raises SchemaConflict when the database is missing, the partitioning differs, or a column
    has another type. The job calls it before it writes anything, so that a conflict fails the
    run cleanly instead of its commit.
    """
    try:
        table: dict[str, Any] = glue.get_table(DatabaseName=spec.database, Name=spec.name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        try:
            glue.get_database(Name=spec.database)
        except glue.exceptions.EntityNotFoundException:
            raise SchemaConflict(f"Glue database '{spec.database}' does not exist; the deployment creates it") from None
        return None
    have_parts = [(k["Name"], k["Type"]) for k in table.get("PartitionKeys", [])]
    if have_parts != list(spec.partition_keys):
        raise SchemaConflict(f"{spec.database}.{spec.name} is partitioned by {have_parts}, "
                             f"the contract asks for {list(spec.partition_keys)}")
    have_types = {c["Name"]: c["Type"] for c in table["StorageDescriptor"].get("Columns", [])}
    for name, ctype in spec.columns:
        if name in have_types and have_types[name].lower() != ctype.lower():
            raise SchemaConflict(f"{spec.database}.{spec.name}.{name} is {have_types[name]} in the catalog, "
                                 f"the job would write {ctype}")
    return table


def ensure_table(glue: Any, spec: TableSpec) -> list[str]:
    """Create the table, or add the columns it lacks; return the names of added columns.

    Columns are only ever appended (Parquet is read by name, so older files simply show nulls).
    A column whose type changed, or a changed partitioning, raises SchemaConflict.
    """
    table = check_table(glue, spec)
    if table is None:
        glue.create_table(DatabaseName=spec.database, TableInput=_table_input(spec, list(spec.columns)))
        logger.info("catalog: created %s.%s", spec.database, spec.name)
        return []
    have_names = {c["Name"] for c in table["StorageDescriptor"].get("Columns", [])}
    added = [(n, t) for n, t in spec.columns if n not in have_names]
    if added:
        # from the table as it is: parameters, comments and settings others gave it stay
        current = {k: v for k, v in table.items() if k in _TABLE_INPUT_KEYS}
        sd = dict(current["StorageDescriptor"])
        sd["Columns"] = [*sd.get("Columns", []), *_cols(added)]
        glue.update_table(DatabaseName=spec.database, TableInput={**current, "StorageDescriptor": sd})
        logger.info("catalog: %s.%s gained columns %s", spec.database, spec.name, [n for n, _ in added])
    return [n for n, _ in added]


#: The fields of a table that ``UpdateTable``'s TableInput takes back (GetTable returns more).
_TABLE_INPUT_KEYS = ("Name", "Description", "Owner", "LastAccessTime", "LastAnalyzedTime", "Retention",
                     "StorageDescriptor", "PartitionKeys", "ViewOriginalText", "ViewExpandedText", "TableType",
                     "Parameters", "TargetTable", "ViewDefinition")


def existing_columns(glue: Any, database: str, table: str) -> list[tuple[str, str]]:
    """The table's data columns, or none when the table does not exist yet."""
    try:
        t = glue.get_table(DatabaseName=database, Name=table)["Table"]
    except glue.exceptions.EntityNotFoundException:
        return []
    return [(c["Name"], c["Type"]) for c in t["StorageDescriptor"].get("Columns", [])]


def add_partitions(glue: Any, spec: TableSpec, partitions: Sequence[tuple[Sequence[str], str]]) -> int:
    """Register partitions (values, location); ones that already exist are left as they are.

    Returns how many were created. Safe to repeat, which the recovery of an interrupted
    commit relies on.
    """
    created = 0
    for i in range(0, len(partitions), 100):
        chunk = partitions[i : i + 100]
        inputs = [{"Values": list(values),
                   "StorageDescriptor": {**PARQUET_SD, "Columns": _cols(spec.columns), "Location": location}}
                  for values, location in chunk]
        resp = glue.batch_create_partition(DatabaseName=spec.database, TableName=spec.name,
                                           PartitionInputList=inputs)
        errors = [e for e in resp.get("Errors", [])
                  if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
        if errors:
            raise RuntimeError(f"catalog: could not register partitions of {spec.database}.{spec.name}: {errors}")
        created += len(chunk) - len(resp.get("Errors", []))
    logger.info("catalog: %s.%s +%d partitions", spec.database, spec.name, created)
    return created


def _table_input(spec: TableSpec, columns: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Name": spec.name,
        "Description": spec.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "SNAPPY",
                       "lake.managed_by": "lake_ingest"},
        "PartitionKeys": _cols(spec.partition_keys),
        "StorageDescriptor": {**PARQUET_SD, "Columns": _cols(columns), "Location": spec.location},
    }
