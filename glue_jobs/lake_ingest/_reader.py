"""Spark I/O: read raw files with an explicit schema, write Parquet."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ._contract import SOURCE_FILE_COL, Contract
from ._transforms import CORRUPT_COL

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


def read_group(spark: SparkSession, group: ReadGroup, contract: Contract) -> DataFrame:
    """Read one group of files: text formats as strings with a corrupt-record column, so that
    no value is lost to a failed conversion; Parquet with its own types."""
    fmt = contract.format
    if fmt.type == "parquet":
        df = spark.read.parquet(*group.paths)
        return df.select(*[F.col(f"`{c}`") for c in group.columns],
                         F.col("_metadata.file_path").alias(SOURCE_FILE_COL))
    schema = T.StructType([T.StructField(c, T.StringType()) for c in group.columns]
                          + [T.StructField(CORRUPT_COL, T.StringType())])
    reader = spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COL)
    if fmt.type == "csv":
        csv = (reader.option("sep", fmt.delimiter).option("header", fmt.header).option("quote", fmt.quote)
              .option("escape", fmt.escape).option("encoding", fmt.encoding).option("enforceSchema", True)
              .option("nullValue", "").option("emptyValue", ""))
        if "comment" in fmt.options:
            csv = csv.option("comment", fmt.options["comment"])
        out = csv.csv(list(group.paths))
    else:
        out = reader.option("encoding", fmt.encoding).json(list(group.paths))
    return out.withColumn(SOURCE_FILE_COL, F.col("_metadata.file_path"))


def read_files(spark: SparkSession, groups: Sequence[ReadGroup], contract: Contract) -> DataFrame:
    """Read every group and union them by column name (columns a group lacks are null)."""
    frames = [read_group(spark, g, contract) for g in groups]
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
