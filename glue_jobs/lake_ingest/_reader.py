"""Spark I/O: read raw files with an explicit schema, write Parquet."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ._contract import SOURCE_FILE_COL, Contract
from ._transforms import CORRUPT_COL, REPARSED_COL, text_column

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadGroup:
    """Files that share one layout (the same columns in the same order) and are read together."""

    paths: tuple[str, ...]
    columns: tuple[str, ...]


def group_files(files: Sequence[tuple[str, tuple[str, ...]]]) -> list[ReadGroup]:
    """Group (path, columns) pairs by their column layout, keeping first-seen order."""
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path, columns in files:
        groups[columns].append(path)
    return [ReadGroup(tuple(paths), cols) for cols, paths in groups.items()]


def parquet_columns(spark: SparkSession, path: str) -> tuple[str, ...]:
    """Column names from a Parquet file's footer."""
    return tuple(spark.read.parquet(path).schema.fieldNames())


#: Contract types that Spark's CSV reader converts exactly as the job's text conversion does
#: (when the reader succeeds). Decimals are not among them: the reader drops thousands commas.
_NATIVE_TYPES: dict[str, T.DataType] = {
    "tinyint": T.ByteType(), "smallint": T.ShortType(), "int": T.IntegerType(), "bigint": T.LongType(),
    "float": T.FloatType(), "double": T.DoubleType(), "date": T.DateType(), "timestamp": T.TimestampType(),
}


@dataclass(frozen=True)
class TypedRead:
    """Which CSV columns the reader converts itself, and the date and timestamp patterns it uses."""

    columns: Mapping[str, T.DataType]
    date_format: str | None = None
    timestamp_format: str | None = None


def typed_read(contract: Contract) -> TypedRead:
    """Plan the CSV columns Spark's reader types directly: whole numbers, floating point, and
    dates and timestamps whose pattern is the most common one of their type (the reader takes one
    pattern per type). The others are read as text and converted by the job."""
    if contract.format.type != "csv":
        return TypedRead({})
    formats = {kind: Counter(c.format for c in contract.columns if c.type == kind and c.format).most_common(1)
               for kind in ("date", "timestamp")}
    chosen = {kind: (found[0][0] if found else None) for kind, found in formats.items()}
    columns = {c.source_name: _NATIVE_TYPES[c.type] for c in contract.columns
               if c.type in _NATIVE_TYPES and (c.type not in chosen or (c.format and c.format == chosen[c.type]))}
    return TypedRead(columns, chosen["date"], chosen["timestamp"])


def read_group(spark: SparkSession, group: ReadGroup, contract: Contract, typed: bool = True) -> DataFrame:
    """Read one group of files: Parquet with its own types; JSON as text; CSV with the columns of
    ``typed_read`` converted by the reader (``typed=False``: all as text). Text formats have a
    corrupt-record column, so that no value is lost to a failed conversion.

    A CSV line that the reader cannot convert is parsed again as text (``from_csv``, for those
    lines only): ``_lake_text_<column>`` then holds the text of each typed column and
    ``_lake_reparsed`` is true, so the job converts it the text way and reports the exact cause.
    ``_corrupt_record`` keeps only the lines that cannot be parsed even as text.
    """
    fmt = contract.format
    if fmt.type == "parquet":
        df = spark.read.parquet(*group.paths)
        return df.select(*[F.col(f"`{c}`") for c in group.columns],
                         F.col("_metadata.file_path").alias(SOURCE_FILE_COL))
    plan = typed_read(contract) if typed and fmt.type == "csv" else TypedRead({})
    natives = [c for c in group.columns if c in plan.columns]
    schema = T.StructType([T.StructField(c, plan.columns.get(c, T.StringType())) for c in group.columns]
                          + [T.StructField(CORRUPT_COL, T.StringType())])
    reader = spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COL)
    if fmt.type == "csv":
        text_options = {"sep": fmt.delimiter, "quote": fmt.quote, "escape": fmt.escape, "nullValue": "",
                        "emptyValue": ""}
        csv = reader.options(**text_options).option("header", fmt.header).option("encoding", fmt.encoding)
        csv = csv.option("enforceSchema", True)
        if "comment" in fmt.options:
            csv = csv.option("comment", fmt.options["comment"])
        if plan.date_format:
            csv = csv.option("dateFormat", plan.date_format)
        if plan.timestamp_format:
            csv = csv.option("timestampFormat", plan.timestamp_format)
        out = csv.csv(list(group.paths))
        if plan.columns:
            corrupt = F.col(CORRUPT_COL)
            ddl = ", ".join(f"`{c.replace('`', '``')}` STRING" for c in [*group.columns, CORRUPT_COL])
            reparsed = F.from_csv(corrupt, ddl, {**text_options, "mode": "PERMISSIVE",
                                                 "columnNameOfCorruptRecord": CORRUPT_COL})
            out = out.withColumns({
                **{text_column(c): F.when(corrupt.isNotNull(), reparsed[c]) for c in natives},
                REPARSED_COL: corrupt.isNotNull(),
                CORRUPT_COL: F.when(reparsed[CORRUPT_COL].isNotNull(), corrupt),
            })
    else:
        out = reader.option("encoding", fmt.encoding).json(list(group.paths))
    return out.withColumn(SOURCE_FILE_COL, F.col("_metadata.file_path"))


def read_files(spark: SparkSession, groups: Sequence[ReadGroup], contract: Contract, typed: bool = True) -> DataFrame:
    """Read every group and union them by column name (columns a group lacks are null).

    ``typed=False`` reads every CSV column as text (what ``repeated_keys`` needs)."""
    frames = [read_group(spark, g, contract, typed) for g in groups]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def write_parquet(df: DataFrame, uri: str, partition_by: Sequence[str] = (), mode: str = "overwrite") -> None:
    """Write snappy Parquet to a location owned by one run: by default replacing what an earlier
    attempt of the same run left there, or adding files with ``mode="append"``."""
    writer = df.write.mode(mode).option("compression", "snappy")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(uri)
