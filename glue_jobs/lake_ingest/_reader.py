"""Spark I/O: read raw files with an explicit schema, write Parquet."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ._contract import Contract
from ._transforms import CORRUPT_COL, _q, as_text, typed_before_union, typed_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadGroup:
    """Files that share one layout (the same columns in the same order, and for Parquet the same
    physical types) and are read together."""

    paths: tuple[str, ...]
    columns: tuple[str, ...]


def group_files(files: Sequence[tuple[str, tuple[str, ...], tuple[str, ...]]]) -> list[ReadGroup]:
    """Group (path, columns, types) by columns and types, keeping first-seen order. Text formats
    have no types (empty); Parquet files whose types differ are read apart, because one Spark
    read takes one file's types for all, and their union converts what differs."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = defaultdict(list)
    for path, columns, types in files:
        groups[(columns, types)].append(path)
    return [ReadGroup(tuple(paths), cols) for (cols, _), paths in groups.items()]


#: Characters that Spark's readers take as a glob pattern in a path (Hadoop's ``globStatus``).
_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def spark_paths(uris: Sequence[str]) -> list[str]:
    """File URIs as Spark's readers must be given them: glob characters escaped, so that a raw
    file named ``orders [final].csv`` is read as itself, not as a pattern."""
    return [_GLOB_CHARS.sub(r"\\\1", uri) for uri in uris]


def rewritten_by_spark(key: str) -> bool:
    """True when Spark would open another object than ``key``: Hadoop's ``Path``, through which
    Spark opens every file, drops empty path segments (``a//b`` is read as ``a/b``) and resolves
    ``.`` and ``..``. S3 keys are plain strings and may hold all three."""
    return any(segment in ("", ".", "..") for segment in key.split("/"))


def parquet_schema(spark: SparkSession, path: str) -> tuple[tuple[str, str], ...]:
    """Columns and their Spark types from a Parquet file's footer."""
    return tuple((f.name, f.dataType.simpleString()) for f in spark.read.parquet(*spark_paths([path])).schema)


def read_group(spark: SparkSession, group: ReadGroup, contract: Contract) -> DataFrame:
    """Read one group of files: text formats as strings with a corrupt-record column, so that
    no value is lost to a failed conversion; Parquet with its own types. The source file of each
    row is added later, by ``validate`` (see there why)."""
    fmt = contract.format
    if fmt.type == "parquet":
        df = spark.read.parquet(*spark_paths(group.paths))
        return df.select(*[F.col(_q(c)) for c in group.columns])
    schema = T.StructType([T.StructField(c, T.StringType()) for c in group.columns]
                          + [T.StructField(CORRUPT_COL, T.StringType())])
    reader = spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COL)
    if fmt.type == "csv":
        csv = (reader.option("sep", fmt.delimiter).option("header", fmt.header).option("quote", fmt.quote)
              .option("escape", fmt.escape).option("encoding", fmt.encoding).option("enforceSchema", True)
              .option("nullValue", "").option("emptyValue", ""))
        if "comment" in fmt.options:
            csv = csv.option("comment", fmt.options["comment"])
        if fmt.multiline:
            csv = csv.option("multiLine", True)
        out = csv.csv(spark_paths(group.paths))
    else:
        json = reader.option("encoding", fmt.encoding)
        if json_splits_at_lf_only(fmt.encoding):
            json = json.option("lineSep", "\n")  # Spark requires it for other encodings; a CR is JSON whitespace
        out = json.json(spark_paths(group.paths))
    return out


def read_files(spark: SparkSession, groups: Sequence[ReadGroup], contract: Contract) -> DataFrame:
    """Read every group and union them by column name (columns a group lacks are null).

    Parquet groups may hold a column in different types. A union would convert them to a common
    type first (a bigint and a double to double, losing digits above 2^53; decimal(38,0) and
    decimal(38,10) to decimal(38,10), which overflows), so such a column is converted to the
    contract's type in each group, from the group's own type, and its source value (kept for
    rejected rows) becomes text."""
    frames = [read_group(spark, g, contract) for g in groups]
    if len(frames) > 1 and contract.format.type == "parquet":
        seen: dict[str, set[str]] = defaultdict(set)
        for frame in frames:
            for field in frame.schema.fields:
                seen[field.name].add(field.dataType.simpleString())
        mixed = sorted(name for name, types in seen.items() if len(types) > 1)
        if mixed:
            logger.info("columns held in different types by the files of this run, converted file by file: %s",
                        mixed)
            frames = [typed_before_union(frame, contract, mixed) for frame in frames]
            frames = [frame.withColumns({f.name: as_text(f.name, f.dataType) for f in frame.schema.fields if f.name in mixed})
                      for frame in frames]
    return _union(frames)


def _union(frames: Sequence[DataFrame]) -> DataFrame:
    """Union frames by column name; columns a frame lacks are null."""
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


#: Encodings whose bytes Spark's text reader decodes as they are (it reads UTF-8 only).
_TEXT_READER_ENCODINGS = {"utf-8", "utf8", "us-ascii", "ascii"}


def decodes_as_utf8(encoding: str) -> bool:
    """Whether Spark's text reader, which decodes UTF-8 only, reads this encoding as it is."""
    return encoding.lower() in _TEXT_READER_ENCODINGS


def json_splits_at_lf_only(encoding: str) -> bool:
    """Whether Spark's JSON reader splits the lines of files in ``encoding`` at line feeds only.
    It needs ``lineSep`` for every encoding but UTF-8 (US-ASCII too), and with it does not split
    at a carriage return alone, as it does in UTF-8."""
    return encoding.lower() not in ("utf-8", "utf8")


#: Why a JSON Lines line cannot stand as one record (``json_line_keys``).
JSON_ARRAY_LINE = "a line holds a JSON array, which Spark's reader would split into rows, not one object"
JSON_BARE_CR = ("a line holds a carriage return that does not end it; in this encoding Spark's JSON reader "
                "splits lines at line feeds only and would read the records around it as one")


def json_line_keys(lines: DataFrame, encoding: str = "UTF-8") -> DataFrame:
    """Of a text read of JSON Lines files (``value``, plus ``file``): every key of each line's
    record (``key``, null for a line without one) and ``problem``, why the line cannot be read
    as one record, or null. Distinct rows. Where ``json_splits_at_lf_only``, the lines must be
    read as the JSON reader splits them (``lineSep`` LF), and a carriage return inside one is a
    problem.

    A line that ``json_object_keys`` cannot read is read again as a map, which takes what Spark's
    JSON reader takes and that function does not: ``NaN`` and ``Infinity``, as Python's ``json``
    writes them. The problem found is a JSON array, which the reader makes a row of each element
    of; it has no keys, so only lines without keys are tested. (A key repeated in one record is
    not looked for: comparing every record's keys with their distinct set made this pass five
    times slower, measured at 1 M rows.) Text in an ASCII-compatible encoding other than UTF-8 is
    decoded from the line's bytes first."""
    value = F.col("value")
    if not decodes_as_utf8(encoding):
        value = F.decode(value.cast("binary"), encoding)
    # a file's first line may start with a BOM, which from_json does not skip
    as_map = F.from_json(F.regexp_replace(value, "^\ufeff", ""), "map<string,string>")
    keyed = lines.select("file", value.alias("line"), F.coalesce(F.json_object_keys(value), F.map_keys(as_map))
                         .alias("keys"))
    problem = F.when(F.col("keys").isNull() & F.col("line").rlike(r"^\s*\["), F.lit(JSON_ARRAY_LINE))
    if json_splits_at_lf_only(encoding):
        problem = problem.when(F.col("line").rlike("\r[\\s\\S]"), F.lit(JSON_BARE_CR))
    # The records of a file mostly share one list of keys: keeping the distinct lists first and
    # only then splitting them into keys spares the aggregation a row per key of every record.
    # Records whose lists differ (keys in another order, optional keys left out) keep more lists,
    # at worst one per record, which shuffles them all; sorting each list first took longer than
    # it saves on uniform records (17 to 22 s against 13 s for 5 M records, measured).
    lists = keyed.select("file", problem.alias("problem"), "keys").distinct()
    return lists.select("file", "problem", F.explode_outer("keys").alias("key")).distinct()


def counts_header_lines(contract: Contract) -> bool:
    """Whether ``read_key_columns`` reads the files as lines, header lines included (not when a
    record may span lines)."""
    fmt = contract.format
    return fmt.type == "csv" and decodes_as_utf8(fmt.encoding) and not fmt.multiline


def read_key_columns(spark: SparkSession, groups: Sequence[ReadGroup], contract: Contract,
                     names: Sequence[str]) -> DataFrame:
    """The source columns ``names`` of every row of ``groups``, as ``read_files`` gives them, for
    finding repeated keys.

    CSV in UTF-8 is read as lines and each key is the text between delimiters, which skips the
    tokenizing of the CSV parser (about half the time of that pass). A line whose fields up to
    the key hold a quote or escape character is parsed with the CSV parser and the same options,
    so every row that ``read_files`` reads gets the same key values here. Header lines are not
    removed: their text counts as one more key value, which can only make a key look repeated
    (its rows are then settled with the others), never hide one. Other formats, other encodings
    and CSV whose records may span lines (``multiline``) use ``read_files`` with only these
    columns.
    """
    fmt = contract.format
    if not counts_header_lines(contract):
        frame = read_files(spark, groups, contract)
        made = [typed_name(c.name) for c in contract.columns  # converted by typed_before_union
                if c.source_name in names and typed_name(c.name) in frame.columns]
        return frame.select(*[F.col(_q(n)) if n in frame.columns else F.lit(None).cast("string").alias(n)
                              for n in names], *[F.col(_q(c)) for c in made])
    frames = []
    for group in groups:
        line = F.col("value")
        fields = F.from_csv(line, ", ".join(f"{_q(c)} STRING" for c in group.columns),
                            {"sep": fmt.delimiter, "quote": fmt.quote, "escape": fmt.escape,
                             "nullValue": "", "emptyValue": "", "mode": "PERMISSIVE"})
        cols = []
        for name in names:
            if name not in group.columns:
                cols.append(F.lit(None).cast("string").alias(name))
                continue
            index = group.columns.index(name)
            upto = F.substring_index(line, fmt.delimiter, index + 1)
            plain = ~upto.contains(fmt.quote) & ~upto.contains(fmt.escape)
            value = F.substring_index(upto, fmt.delimiter, -1)
            # A line with fewer fields reads as null there, as in the CSV parser. Tested with byte
            # lengths: counting characters (length, instr) made a key far into the line cost
            # more than twice as much as the CSV parser (measured at 1 M rows, field 20 of 22).
            present = (F.octet_length(F.substring_index(line, fmt.delimiter, index)) < F.octet_length(line)
                       if index else F.lit(True))
            cols.append(F.when(plain, F.when(present & (value != ""), value))
                        .otherwise(fields[name]).alias(name))
        frames.append(spark.read.text(spark_paths(group.paths)).select(*cols))
    return _union(frames)


def write_parquet(df: DataFrame, uri: str, partition_by: Sequence[str] = (), mode: str = "overwrite",
                  plain_encoded: Sequence[str] = ()) -> None:
    """Write snappy Parquet to a location owned by one attempt of a run: by default replacing what
    an earlier pass of the same attempt left there, or adding files with ``mode="append"``. The columns in
    ``plain_encoded`` are written without dictionary encoding."""
    writer = df.write.mode(mode).option("compression", "snappy")
    for name in plain_encoded:
        writer = writer.option(f"parquet.enable.dictionary#{name}", "false")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(uri)
