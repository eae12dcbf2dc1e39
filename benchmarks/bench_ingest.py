"""Benchmark: the full ingest job against plain Spark and DuckDB on the same wide CSV files."""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import psutil
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake_ingest import AwsClients, Contract, JobSettings, RunResult, configure_spark, run_ingest
from lake_ingest._reader import group_files, read_files
from lake_ingest._storage import LocalStorage
from lake_ingest._transforms import CORRUPT_COL
from lake_ingest.local.aws_setup import bootstrap

logger = logging.getLogger(__name__)

DATASET_ID = "bench_wide"
SOURCE_PREFIX = "bench/wide/"
FILE_PATTERN = "part_*.csv"
JSONL_PREFIX = "bench/wide_jsonl/"
JSONL_PATTERN = "part_*.jsonl"
JSONL_JOB, JSONL_PLAIN = "JSON Lines: full job", "JSON Lines: plain Spark"
PARTITION_COL = "event_date"
DEFAULT_SIZES = (1_000_000, 5_000_000)
DEFAULT_FILES = 8
WARMUP_ROWS = 10_000
TARGET_RATIO = 1.3
TARGET_ROWS = 5_000_000
TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"
DUCKDB_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
FIRST_DAY = "2026-10-01"
DAYS = 30
REGION = "eu-west-1"
MIB = 1024 * 1024
TUNED_PHASE = "plain Spark, job's Parquet settings"
PHASE_WIDTH = len(TUNED_PHASE) + 2
JOB_PHASE, PLAIN_PHASE, DUCKDB_PHASE = "full job", "plain Spark", "DuckDB"
#: The contenders in their order on odd repeats (``run_order``), and their output dirs.
CONTENDERS = (JOB_PHASE, PLAIN_PHASE, TUNED_PHASE, DUCKDB_PHASE)
_OUT_DIRS = dict(zip(CONTENDERS, ("job", "plain_spark", "plain_spark_tuned", "duckdb"), strict=True))
DEFAULT_REPEAT = 2

CATEGORIES = ("ELECTRONICS", "GROCERY", "FASHION", "HOME", "TOYS", "SPORTS", "BEAUTY", "BOOKS")
CHANNELS = ("web", "store", "app", "phone")
COUNTRIES = ("DE", "FR", "GB", "IE", "NL", "ES", "IT", "US", "PL", "SE")
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED", "RETURNED")


def _ts(name: str, nullable: bool = True) -> dict[str, Any]:
    return {"name": name, "type": "timestamp", "nullable": nullable, "format": TIMESTAMP_FORMAT,
            "dictionary": False}


#: The benchmark's contract: every column typed, de-duplication, and rules of every kind but
#: ``unique`` with ``reject`` and ``warn`` actions (benchmarks/README.md says what it leaves out).
BENCH_CONTRACT: dict[str, Any] = {
    "dataset_id": DATASET_ID,
    "version": 1,
    "enabled": True,
    "description": "Synthetic wide sales events (benchmark only).",
    "source": {"bucket": "raw", "prefix": SOURCE_PREFIX, "pattern": FILE_PATTERN},
    "format": {
        "type": "csv",
        "compression": "none",
        "options": {"delimiter": ",", "header": True, "quote": '"', "escape": '"',
                    "encoding": "UTF-8"},
        "null_values": ["", "NULL"],
    },
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False},
        {"name": "customer_id", "type": "bigint", "nullable": False, "dictionary": False},
        {"name": "store_id", "type": "int"},
        {"name": "product_id", "type": "int", "dictionary": False},
        {"name": "quantity", "type": "int"},
        {"name": "loyalty_points", "type": "bigint", "dictionary": False},
        {"name": "amount", "type": "decimal(12,2)", "nullable": False, "dictionary": False},
        {"name": "tax", "type": "decimal(12,2)", "dictionary": False},
        {"name": "discount", "type": "decimal(12,2)"},
        {"name": "shipping", "type": "decimal(12,2)"},
        {"name": "unit_price", "type": "double", "dictionary": False},
        {"name": "weight_kg", "type": "double", "dictionary": False},
        {"name": "score", "type": "double", "dictionary": False},
        {"name": "category", "type": "string", "nullable": False},
        {"name": "channel", "type": "string"},
        {"name": "country", "type": "string"},
        {"name": "status", "type": "string"},
        {"name": "product_code", "type": "string", "dictionary": False},
        {"name": PARTITION_COL, "type": "date", "nullable": False, "format": "yyyy-MM-dd"},
        _ts("created_at"),
        _ts("updated_at", nullable=False),
        {"name": "is_member", "type": "boolean"},
    ],
    "primary_key": ["id"],
    "partition_by": [PARTITION_COL],
    "deduplicate": {"order_by": ["updated_at"]},
    "target": {"database": "bench", "table": "wide_events"},
    "quality": [
        {"name": "category_known", "type": "allowed_values", "column": "category",
         "values": list(CATEGORIES), "action": "reject"},
        {"name": "channel_known", "type": "allowed_values", "column": "channel",
         "values": list(CHANNELS), "action": "reject"},
        {"name": "amount_in_range", "type": "range", "column": "amount", "min": 0,
         "max": 100000, "action": "reject"},
        {"name": "quantity_positive", "type": "range", "column": "quantity", "min": 1,
         "action": "reject"},
        {"name": "discount_plausible", "type": "range", "column": "discount", "min": 0,
         "max": 50, "action": "warn"},
        {"name": "product_code_format", "type": "regex", "column": "product_code",
         "pattern": "^[A-Z]{3}-[0-9]{4}$", "action": "reject"},
        {"name": "store_and_product_present", "type": "not_null",
         "columns": ["store_id", "product_id"], "action": "reject"},
    ],
    "schema_evolution": "strict",
}

# ----------------------------------------------------------------------------- data generation

#: ``bench_mix(k, salt)``: a deterministic pseudo-random integer in [0, 2**32) from a record
#: number and a salt (MurmurHash3's 32-bit finalizer over ``k * 64 + salt``; no random()).
_MIX_MACROS = (
    "CREATE OR REPLACE MACRO bench_mul(x, m) AS "
    "((CAST(x AS UBIGINT) * CAST(m AS UBIGINT)) % CAST(4294967296 AS UBIGINT))",
    "CREATE OR REPLACE MACRO bench_xs(x, s) AS xor(x, x >> s)",
    "CREATE OR REPLACE MACRO bench_mix(k, salt) AS CAST(bench_xs(bench_mul(bench_xs(bench_mul("
    "bench_xs(bench_mul(k * 64 + salt, 2654435761), 16), 2246822519), 13), 3266489917), 16) "
    "AS BIGINT)",
)


def _pick(values: Sequence[str], salt: int) -> str:
    items = ", ".join(f"'{v}'" for v in values)
    return f"[{items}][1 + bench_mix(k, {salt}) % {len(values)}]"


def _money(cents: str) -> str:
    return f"printf('%d.%02d', ({cents}) // 100, ({cents}) % 100)"


def generator_sql(start: int, stop: int, size: int) -> str:
    """The SELECT producing rows ``start <= n < stop`` of a dataset of ``size`` rows.

    Row ``n`` describes record ``k``: ``k = n`` except for one row in 1,000 (``n % 1000 = 999``),
    a later version of record ``n - 500`` (same id, later ``updated_at``). One row in 2,000
    (``n % 2000 = 1000``) is bad, in one of five ways picked by ``(n // 2000) % 5``: amount not a
    number, unknown category, negative amount, malformed product code, missing customer id.
    About one row in 200 has a discount above 50 (a warning only).
    """
    bad = "CASE WHEN n % 2000 = 1000 THEN (n // 2000) % 5 ELSE -1 END"
    cents = "(100 + bench_mix(k, 10) % 500000)"
    letters = " || ".join(f"chr(CAST(65 + bench_mix(k, {salt}) % 26 AS INTEGER))"
                          for salt in (17, 18, 19))
    code = f"{letters} || '-' || lpad(CAST(bench_mix(k, 20) % 10000 AS VARCHAR), 4, '0')"
    return f"""
    WITH rows AS (
        SELECT n, CASE WHEN n % 1000 = 999 THEN n - 500 ELSE n END AS k,
               n % 1000 = 999 AS is_dup, {bad} AS bad
        FROM range({start}, {stop}) AS t(n)
    ), base AS (
        SELECT *,
               DATE '{FIRST_DAY}' + CAST((k * {DAYS}) // {size} AS INTEGER) AS day,
               {cents} AS cents,
               1 + bench_mix(k, 8) % 12 AS qty
        FROM rows
    ), stamped AS (
        SELECT *,
               CAST(day AS TIMESTAMP) + to_seconds(bench_mix(k, 5) % 86400) AS created
        FROM base
    )
    SELECT
        k + 1 AS id,
        CASE WHEN bad = 4 THEN NULL ELSE 100000 + bench_mix(k, 1) % 250000 END AS customer_id,
        1 + bench_mix(k, 2) % 400 AS store_id,
        1 + bench_mix(k, 7) % 20000 AS product_id,
        qty AS quantity,
        (bench_mix(k, 9) * 37) % 1000000 AS loyalty_points,
        CASE WHEN bad = 0 THEN 'n/a' WHEN bad = 2 THEN '-' || {_money("cents")}
             ELSE {_money("cents")} END AS amount,
        {_money("cents * 19 // 100")} AS tax,
        CASE WHEN bench_mix(k, 12) % 200 = 0 THEN {_money("5001 + bench_mix(k, 11) % 999")}
             ELSE {_money("bench_mix(k, 11) % 5000")} END AS discount,
        CASE WHEN bench_mix(k, 13) % 10 = 0 THEN NULL
             ELSE {_money("bench_mix(k, 13) % 3000")} END AS shipping,
        round(cents / 100.0 / qty, 4) AS unit_price,
        (bench_mix(k, 14) % 50000) / 1000.0 AS weight_kg,
        bench_mix(k, 15) / 4294967296.0 AS score,
        CASE WHEN bad = 1 THEN 'UNKNOWN' ELSE {_pick(CATEGORIES, 3)} END AS category,
        {_pick(CHANNELS, 4)} AS channel,
        CASE WHEN bench_mix(k, 6) % 100 = 0 THEN NULL ELSE {_pick(COUNTRIES, 21)} END AS country,
        CASE WHEN is_dup THEN 'SHIPPED' ELSE {_pick(STATUSES, 22)} END AS status,
        CASE WHEN bad = 3 THEN lower({code}) ELSE {code} END AS product_code,
        strftime(day, '%Y-%m-%d') AS {PARTITION_COL},
        strftime(created, '{DUCKDB_TIMESTAMP_FORMAT}') AS created_at,
        strftime(created + to_seconds(bench_mix(k, 16) % 7200
                                      + CASE WHEN is_dup THEN 10800 + n % 3600 ELSE 0 END),
                 '{DUCKDB_TIMESTAMP_FORMAT}') AS updated_at,
        bench_mix(k, 23) % 3 = 0 AS is_member
    FROM stamped
    ORDER BY n
    """


@dataclass(frozen=True)
class Dataset:
    """Generated files of one size and format ("csv" or "jsonl"), ready to be read by the
    contenders."""

    size: int
    root: Path  # <work-dir>/<size>
    files: tuple[Path, ...]
    bytes: int
    seconds: float
    reused: bool
    fmt: str = "csv"

    @property
    def raw_root(self) -> Path:
        return self.root / "raw"


def _file_rows(size: int, files: int) -> list[tuple[int, int]]:
    bounds = [size * i // files for i in range(files + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(files)]


def _fingerprint(size: int) -> str:
    """Identifies the generator's SQL, so that changing it invalidates earlier files."""
    text = "\n".join((*_MIX_MACROS, generator_sql(0, size, size)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _count_lines(path: Path) -> int:
    lines = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(16 * MIB):
            lines += chunk.count(b"\n")
    return lines


#: Per format: the folder below ``raw/``, the file suffix, DuckDB's COPY options, the manifest's
#: name and the lines a file has before its rows.
_FORMATS = {
    "csv": (SOURCE_PREFIX, "csv", "FORMAT csv, HEADER true, DELIMITER ','", "manifest.json", 1),
    "jsonl": (JSONL_PREFIX, "jsonl", "FORMAT json", "manifest_jsonl.json", 0),
}


def _reusable(root: Path, size: int, files: int, fmt: str = "csv") -> list[Path] | None:
    *_, manifest_name, header_lines = _FORMATS[fmt]
    manifest = root / manifest_name
    if not manifest.exists():
        return None
    try:
        info = json.loads(manifest.read_text())
    except ValueError:
        return None
    if info.get("generator") != _fingerprint(size) or info.get("size") != size:
        return None
    expected = _file_rows(size, files)
    entries = info.get("files", [])
    if len(entries) != len(expected):
        return None
    paths = []
    for entry, (start, stop) in zip(entries, expected, strict=True):
        path = root / entry["path"]
        if entry["rows"] != stop - start or not path.exists():
            return None
        if path.stat().st_size != entry["bytes"]:
            return None
        if _count_lines(path) != stop - start + header_lines:  # one line per row
            return None
        paths.append(path)
    return paths


def generate(root: Path, size: int, files: int = DEFAULT_FILES, threads: int = 2,
             fmt: str = "csv") -> Dataset:
    """Write ``size`` rows as ``files`` plain CSV files under ``root/raw/bench/wide/``, or with
    ``fmt="jsonl"`` the same rows as JSON Lines files under ``root/raw/bench/wide_jsonl/``
    (numbers as JSON numbers, the bad amounts and the dates and timestamps as strings).

    Files of an earlier call with the same size, format and layout are reused (checked against
    the manifest and by counting their lines).
    """
    if size < files:
        raise ValueError(f"{size} rows cannot fill {files} files")
    prefix, suffix, copy_options, manifest_name, _ = _FORMATS[fmt]
    kind = "CSV" if fmt == "csv" else "JSON Lines"
    started = time.perf_counter()
    root = root.resolve()
    reused = _reusable(root, size, files, fmt)
    if reused is not None:
        total = sum(p.stat().st_size for p in reused)
        seconds = time.perf_counter() - started
        logger.info("%s rows: reusing %d %s files (%.1f MiB), checked in %.1f s", f"{size:,}",
                    len(reused), kind, total / MIB, seconds)
        return Dataset(size, root, tuple(reused), total, seconds, True, fmt)
    target = root / "raw" / prefix
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (root / manifest_name).unlink(missing_ok=True)
    logger.info("%s rows: generating %d %s files with DuckDB in %s", f"{size:,}", files, kind, target)
    entries: list[dict[str, Any]] = []
    paths = []
    with duckdb.connect() as con:
        con.execute(f"SET threads = {threads}")
        con.execute("SET preserve_insertion_order = true")
        for macro in _MIX_MACROS:
            con.execute(macro)
        for i, (start, stop) in enumerate(_file_rows(size, files)):
            path = target / f"part_{i:02d}.{suffix}"
            tmp = path.with_name(path.name + ".tmp")
            con.execute(f"COPY ({generator_sql(start, stop, size)}) TO '{tmp}' ({copy_options})")
            tmp.replace(path)
            paths.append(path)
            entries.append({"path": path.relative_to(root).as_posix(), "rows": stop - start,
                            "bytes": path.stat().st_size})
    manifest = {"generator": _fingerprint(size), "size": size, "files": entries}
    (root / manifest_name).write_text(json.dumps(manifest, indent=2))
    total = sum(e["bytes"] for e in entries)
    seconds = time.perf_counter() - started
    logger.info("%s rows: generated %.1f MiB of %s in %.1f s (not part of the comparison)",
                f"{size:,}", total / MIB, kind, seconds)
    return Dataset(size, root, tuple(paths), total, seconds, False, fmt)


def jsonl_contract() -> dict[str, Any]:
    """The benchmark contract for the JSON Lines files of ``generate(..., fmt="jsonl")``."""
    doc = copy.deepcopy(BENCH_CONTRACT)
    doc["source"] = {**doc["source"], "prefix": JSONL_PREFIX, "pattern": JSONL_PATTERN}
    doc["format"] = {"type": "jsonl", "compression": "none", "options": {"encoding": "UTF-8"},
                     "null_values": doc["format"]["null_values"]}
    return doc


# ----------------------------------------------------------------------------- schemas

_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(), "boolean": T.BooleanType(), "smallint": T.ShortType(),
    "int": T.IntegerType(), "bigint": T.LongType(), "float": T.FloatType(),
    "double": T.DoubleType(), "date": T.DateType(), "timestamp": T.TimestampType(),
}
_DUCKDB_TYPES = {
    "string": "VARCHAR", "boolean": "BOOLEAN", "smallint": "SMALLINT", "int": "INTEGER",
    "bigint": "BIGINT", "float": "FLOAT", "double": "DOUBLE", "date": "DATE",
    "timestamp": "TIMESTAMP",
}


def _typed_columns(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in Contract.from_dict(doc).columns]


def spark_schema(doc: dict[str, Any] = BENCH_CONTRACT) -> T.StructType:
    """The explicit Spark schema of the CSV files, from the contract's column types."""
    fields = []
    for name, ctype in _typed_columns(doc):
        m = _DECIMAL.match(ctype)
        dtype = T.DecimalType(int(m.group(1)), int(m.group(2))) if m else _SPARK_TYPES[ctype]
        fields.append(T.StructField(name, dtype, True))
    return T.StructType(fields)


def duckdb_columns(doc: dict[str, Any] = BENCH_CONTRACT) -> dict[str, str]:
    """The explicit DuckDB column types of the CSV files, from the contract's column types."""
    return {name: ctype.upper() if _DECIMAL.match(ctype) else _DUCKDB_TYPES[ctype]
            for name, ctype in _typed_columns(doc)}


# ----------------------------------------------------------------------------- measuring


class PeakRss:
    """Samples, in a background thread, the RSS of this process plus all its children (the
    Spark JVM is one) and keeps the peaks."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_total = 0
        self.peak_self = 0
        self.peak_children = 0
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)

    def sample(self) -> None:
        own = self._proc.memory_info().rss
        children = 0
        for child in self._proc.children(recursive=True):
            try:
                children += child.memory_info().rss
            except psutil.Error:  # ended between the listing and the read
                pass
        self.peak_self = max(self.peak_self, own)
        self.peak_children = max(self.peak_children, children)
        self.peak_total = max(self.peak_total, own + children)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRss:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass(frozen=True)
class StageTime:
    """One Spark stage as Spark's status store saw it."""

    stage_id: int
    label: str
    seconds: float  # submission to completion (wall clock)
    task_seconds: float  # executor run time summed over the tasks
    tasks: int
    input_mib: float
    shuffle_read_mib: float
    shuffle_write_mib: float
    spill_mib: float


def _spark_stages(spark: SparkSession) -> list[Any]:
    store = spark.sparkContext._jsc.sc().statusStore()
    defaults = [getattr(store, f"stageList$default${i}")() for i in (4, 5)]
    seq = store.stageList(None, False, False, *defaults)
    return list(spark.sparkContext._jvm.scala.collection.JavaConverters  # type: ignore[union-attr]
                .seqAsJavaList(seq))


def last_stage_id(spark: SparkSession) -> int:
    """The highest stage id so far (-1 when none, or when the status store is not reachable)."""
    try:
        return max((int(s.stageId()) for s in _spark_stages(spark)), default=-1)
    except Exception:  # an internal API: never let it break a benchmark
        return -1


def stages_since(spark: SparkSession, after: int) -> list[StageTime]:
    """Completed stages with an id above ``after``, oldest first (skipped ones left out)."""
    try:
        out = []
        for s in _spark_stages(spark):
            sub, done = s.submissionTime(), s.completionTime()
            if int(s.stageId()) <= after or not (sub.isDefined() and done.isDefined()):
                continue
            desc = s.description()
            out.append(StageTime(
                stage_id=int(s.stageId()),
                label=str(desc.get()) if desc.isDefined() else str(s.name()),
                seconds=(done.get().getTime() - sub.get().getTime()) / 1000,
                task_seconds=int(s.executorRunTime()) / 1000, tasks=int(s.numTasks()),
                input_mib=int(s.inputBytes()) / MIB,
                shuffle_read_mib=int(s.shuffleReadBytes()) / MIB,
                shuffle_write_mib=int(s.shuffleWriteBytes()) / MIB,
                spill_mib=int(s.diskBytesSpilled()) / MIB))
        return sorted(out, key=lambda st: st.stage_id)
    except Exception:
        logger.debug("no stage information", exc_info=True)
        return []


@dataclass
class Timing:
    """Wall-clock seconds, peak memory and (for Spark) the stages of one timed phase."""

    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    peak_python_mib: float = 0.0
    peak_children_mib: float = 0.0
    stages: list[StageTime] = field(default_factory=list)


@contextmanager
def measured(spark: SparkSession | None = None) -> Iterator[Timing]:
    """Time the body and sample its peak RSS (a fresh sampler, so peaks reset per phase)."""
    gc.collect()
    timing = Timing()
    first = last_stage_id(spark) if spark is not None else -1
    with PeakRss() as rss:
        start = time.perf_counter()
        try:
            yield timing
        finally:
            timing.seconds = time.perf_counter() - start
    timing.peak_rss_mib = rss.peak_total / MIB
    timing.peak_python_mib = rss.peak_self / MIB
    timing.peak_children_mib = rss.peak_children / MIB
    if spark is not None:
        timing.stages = stages_since(spark, first)


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def count_parquet_rows(root: Path) -> int:
    """Rows in every Parquet file below a directory (0 when there is none)."""
    if not root.exists() or not any(root.rglob("*.parquet")):
        return 0
    with duckdb.connect() as con:
        row = con.execute(
            f"SELECT count(*) FROM read_parquet('{root}/**/*.parquet', hive_partitioning = false)"
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def _emulated_aws() -> Iterator[AwsClients]:
    """An in-process moto account with fake credentials, so nothing can reach real AWS."""
    from moto import mock_aws

    fake = {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing"}
    with mock.patch.dict(os.environ, fake):
        os.environ.pop("AWS_PROFILE", None)
        with mock_aws():
            yield AwsClients(region_name=REGION)


# ----------------------------------------------------------------------------- the contenders


def job_outputs(out_dir: Path, doc: dict[str, Any] = BENCH_CONTRACT) -> tuple[Path, Path]:
    """Where the job writes its curated and quarantined rows below ``out_dir``."""
    db, table = doc["target"]["database"], doc["target"]["table"]
    return out_dir / "curated" / db / table, out_dir / "quarantine" / db / table


def run_job(spark: SparkSession, data: Dataset, out_dir: Path, *, run_id: str = "bench-1",
            doc: dict[str, Any] = BENCH_CONTRACT) -> tuple[Timing, RunResult]:
    """The full job in an emulated account; only ``run_ingest`` is timed, not the set-up."""
    _fresh(out_dir)
    settings = JobSettings(raw_uri=str(data.raw_root), curated_uri=str(out_dir / "curated"),
                           quarantine_uri=str(out_dir / "quarantine"))
    with _emulated_aws() as clients:
        bootstrap(clients, settings, docs=[copy.deepcopy(doc)])
        with measured(spark) as timing:
            result = run_ingest(spark, doc["dataset_id"], run_id, settings, clients)
    if result.status != "SUCCEEDED":
        raise RuntimeError(f"the job ended {result.status}: {result.message}")
    return timing, result


def plain_read(spark: SparkSession, data: Dataset, doc: dict[str, Any] = BENCH_CONTRACT) -> DataFrame:
    """Plain Spark's read of the benchmark files: the CSV (or JSON) reader with the typed schema."""
    reader = spark.read.schema(spark_schema(doc)).option("timestampFormat", TIMESTAMP_FORMAT)
    paths = [str(p) for p in data.files]
    return reader.json(paths) if data.fmt == "jsonl" else reader.option("header", True).csv(paths)


def run_plain_spark(spark: SparkSession, data: Dataset, out_dir: Path, *, tuned: bool = False,
                    doc: dict[str, Any] = BENCH_CONTRACT) -> Timing:
    """CSV to snappy Parquet with an explicit schema, partitioned like the job's output. With
    ``tuned``, the columns the contract marks ``dictionary: false`` are written the job's way."""
    configure_spark(spark)  # the same session settings as the job (UTC, micros timestamps)
    _fresh(out_dir)
    plain_encoded = Contract.from_dict(doc).plain_encoded if tuned else ()
    with measured(spark) as timing:
        writer = plain_read(spark, data, doc).write.mode("overwrite").option("compression", "snappy").partitionBy(PARTITION_COL)
        for name in plain_encoded:
            writer = writer.option(f"parquet.enable.dictionary#{name}", "false")
        writer.parquet(str(out_dir))
    return timing


def duckdb_copy_sql(files: Sequence[Path], out_dir: Path) -> str:
    """COPY the CSV files to partitioned snappy Parquet with explicit column types."""
    paths = ", ".join(f"'{p}'" for p in files)
    columns = ", ".join(f"'{k}': '{v}'" for k, v in duckdb_columns().items())
    return (
        f"COPY (SELECT * FROM read_csv([{paths}], header = true, delim = ',', quote = '\"', "
        f"escape = '\"', columns = {{{columns}}}, dateformat = '%Y-%m-%d', "
        f"timestampformat = '{DUCKDB_TIMESTAMP_FORMAT}', ignore_errors = true)) "
        f"TO '{out_dir}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY ({PARTITION_COL}))"
    )


def run_duckdb(data: Dataset, out_dir: Path, threads: int = 2) -> Timing:
    """The DuckDB baseline; rows it cannot parse are skipped (``ignore_errors``)."""
    _fresh(out_dir)
    sql = duckdb_copy_sql(data.files, out_dir)
    with duckdb.connect() as con:
        con.execute(f"SET threads = {threads}")
        with measured() as timing:
            con.execute(sql)
    return timing


# ----------------------------------------------------------------------------- one size


@dataclass
class PhaseResult:
    """The best of the repeats of one phase, with its output row count."""

    name: str
    rows_in: int
    rows_out: int
    seconds: float
    peak_rss_mib: float
    peak_python_mib: float
    peak_children_mib: float
    all_seconds: list[float] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)  # of the best run

    @property
    def rows_per_second(self) -> float:
        return self.rows_in / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


def _phase(name: str, rows_in: int, rows_out: int, timings: Sequence[Timing]) -> PhaseResult:
    best = min(timings, key=lambda t: t.seconds)
    return PhaseResult(
        name=name, rows_in=rows_in, rows_out=rows_out,
        seconds=best.seconds,
        peak_rss_mib=max(t.peak_rss_mib for t in timings),
        peak_python_mib=max(t.peak_python_mib for t in timings),
        peak_children_mib=max(t.peak_children_mib for t in timings),
        all_seconds=[round(t.seconds, 3) for t in timings],
        stages=[{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(st).items()}
                for st in best.stages],
    )


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for key in keys:
        out.pop(key, None)
    return out


def profile_job(spark: SparkSession, data: Dataset, out_dir: Path) -> list[PhaseResult]:
    """Optional: the job with features switched off, to see where its time goes."""
    rows = data.size
    phases = []
    with measured() as timing:
        listed = list(LocalStorage().list(str(data.raw_root), SOURCE_PREFIX))
    logger.info("profile: listing + MD5 of %d raw files (part of every job run): %.2f s",
                len(listed), timing.seconds)
    phases.append(_phase("listing + MD5 of raw files", rows, 0, [timing]))
    variants = [
        ("job, no dedupe", _without(BENCH_CONTRACT, "deduplicate")),
        ("job, no dedupe, no rules", {**_without(BENCH_CONTRACT, "deduplicate"), "quality": []}),
    ]
    for name, doc in variants:
        logger.info("profile: %s ...", name)
        timing, result = run_job(spark, data, out_dir, run_id="bench-profile", doc=doc)
        logger.info("profile: %s: %.2f s", name, timing.seconds)
        phases.append(_phase(name, rows, result.rows_written, [timing]))
    plain_dir = out_dir.parent / "profile_plain_strings"
    with measured(spark) as timing:
        df = (spark.read.schema(T.StructType([T.StructField(n, T.StringType()) for n, _ in
                                              _typed_columns(BENCH_CONTRACT)]))
              .option("header", True).csv([str(p) for p in data.files]))
        (df.write.mode("overwrite").option("compression", "snappy").partitionBy(PARTITION_COL)
         .parquet(str(plain_dir)))
    logger.info("profile: plain Spark, all columns as strings: %.2f s", timing.seconds)
    phases.append(_phase("plain Spark, all strings", rows, count_parquet_rows(plain_dir), [timing]))
    shutil.rmtree(plain_dir, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    return phases


#: Reads that ``profile_reads`` times side by side, each into Spark's ``noop`` sink (every row
#: parsed and projected, nothing written): what the job's read costs on top of plain Spark's.
#: Name -> (the job's text read or plain Spark's typed one, corrupt-record column, source file).
NOOP_SUFFIX = ", noop sink"
_READS = {
    "typed read (plain Spark)": (False, False, False),
    "text read": (True, False, False),
    "text read + corrupt-record column": (True, True, False),
    "text read + source-file column": (True, False, True),
    "text read + both (the job's read)": (True, True, True),
}
READ_VARIANTS = tuple(_READS)


def read_variant(spark: SparkSession, data: Dataset, name: str) -> DataFrame:
    """One of ``READ_VARIANTS`` over the benchmark files: plain Spark's read, or the job's
    (``read_files``, every column as text with a corrupt-record column) with or without that
    column and with or without the source file that ``validate`` adds."""
    text, corrupt, source_file = _READS[name]
    if not text:
        return plain_read(spark, data)
    contract = Contract.from_dict(BENCH_CONTRACT)
    columns = tuple(c.source_name for c in contract.columns)
    df = read_files(spark, group_files([(str(p), columns, ()) for p in data.files]), contract)
    if not corrupt:
        df = df.drop(CORRUPT_COL)  # not requested: Spark's reader then leaves it out
    return df.withColumn("source_file", F.input_file_name()) if source_file else df


def profile_reads(spark: SparkSession, data: Dataset, repeat: int = 2) -> list[PhaseResult]:
    """Optional: the reads of ``READ_VARIANTS``, in alternating order, best of ``repeat`` runs."""
    timings: dict[str, list[Timing]] = {name: [] for name in READ_VARIANTS}
    for rep in range(repeat):
        for name in READ_VARIANTS if rep % 2 == 0 else READ_VARIANTS[::-1]:
            with measured(spark) as timing:
                read_variant(spark, data, name).write.format("noop").mode("overwrite").save()
            timings[name].append(timing)
            logger.info("profile: %s, noop sink: %.2f s", name, timing.seconds)
    return [_phase(name + NOOP_SUFFIX, data.size, 0, timings[name]) for name in READ_VARIANTS]


def profile_jsonl(spark: SparkSession, data: Dataset, out_dir: Path, threads: int = 2,
                  repeat: int = 2) -> list[PhaseResult]:
    """Optional: the same rows as JSON Lines, the full job against plain Spark's JSON reader with
    the typed schema, in alternating order, best of ``repeat`` runs. A JSON Lines run of the job
    makes one pass more than a CSV run: it lists the keys of every record (``job_parts`` shows
    it as its own part)."""
    jsonl = generate(data.root, data.size, len(data.files), threads, fmt="jsonl")
    doc = jsonl_contract()
    timings: dict[str, list[Timing]] = {JSONL_JOB: [], JSONL_PLAIN: []}
    written = 0
    for rep in range(repeat):
        for name in (JSONL_JOB, JSONL_PLAIN) if rep % 2 == 0 else (JSONL_PLAIN, JSONL_JOB):
            if name == JSONL_JOB:
                timing, result = run_job(spark, jsonl, out_dir / "job", run_id=f"bench-jsonl-{rep}", doc=doc)
                written = result.rows_written
            else:
                timing = run_plain_spark(spark, jsonl, out_dir / "plain")
            timings[name].append(timing)
            logger.info("profile: %s: %.2f s", name, timing.seconds)
    phases = [_phase(JSONL_JOB, data.size, written, timings[JSONL_JOB]),
              _phase(JSONL_PLAIN, data.size, count_parquet_rows(out_dir / "plain"), timings[JSONL_PLAIN])]
    shutil.rmtree(out_dir, ignore_errors=True)
    return phases


#: The contenders of ``profile_wide``.
WIDE_JOB, WIDE_JOB_LIMITED, WIDE_PLAIN = "wide: full job", "wide: full job, 8,000-byte method limit", "wide: plain Spark"


def wide_contract(copies: int) -> dict[str, Any]:
    """The benchmark contract with ``copies`` more columns: copies of its columns other than the
    key and the partition column (``<name>_1``, then ``<name>_2``...), typed and marked alike."""
    doc = copy.deepcopy(BENCH_CONTRACT)
    sources = [c for c in doc["columns"] if c["name"] not in ("id", PARTITION_COL)]
    doc["columns"] += [{**sources[k % len(sources)], "name": f"{sources[k % len(sources)]['name']}_{k // len(sources) + 1}"}
                       for k in range(copies)]
    return doc


def generate_wide(data: Dataset, copies: int, threads: int = 2) -> Dataset:
    """The rows of ``data`` with the columns of ``wide_contract(copies)``, the copies repeating
    the text of their columns, under ``<work-dir>/<size>-wide<copies>/raw/bench/wide/`` (reused
    when the manifest names the same source files)."""
    root = data.root.parent / f"{data.size}-wide{copies}"
    target, manifest_path = root / "raw" / SOURCE_PREFIX, root / "manifest.json"
    source = [{"path": p.name, "bytes": p.stat().st_size} for p in data.files]
    paths = [target / p.name for p in data.files]
    if (manifest_path.exists() and json.loads(manifest_path.read_text()) == {"source": source, "copies": copies}
            and all(p.exists() for p in paths)):
        return Dataset(data.size, root, tuple(paths), sum(p.stat().st_size for p in paths), 0.0, True)
    started = time.perf_counter()
    _fresh(target).mkdir()
    manifest_path.unlink(missing_ok=True)
    extra = [c["name"] for c in wide_contract(copies)["columns"][len(BENCH_CONTRACT["columns"]):]]
    copies_sql = ", ".join(f'"{name.rsplit("_", 1)[0]}" AS "{name}"' for name in extra)
    with duckdb.connect() as con:
        con.execute(f"SET threads = {threads}")
        con.execute("SET preserve_insertion_order = true")
        for src, dst in zip(data.files, paths, strict=True):
            con.execute(f"COPY (SELECT *, {copies_sql} FROM read_csv('{src}', all_varchar = true, header = true)) "
                        f"TO '{dst}' (HEADER, DELIMITER ',')")
    manifest_path.write_text(json.dumps({"source": source, "copies": copies}))
    seconds = time.perf_counter() - started
    logger.info("wide: wrote %d files of %d columns in %.1f s", len(paths), len(BENCH_CONTRACT["columns"]) + copies,
                seconds)
    return Dataset(data.size, root, tuple(paths), sum(p.stat().st_size for p in paths), seconds, False)


def profile_wide(spark: SparkSession, data: Dataset, copies: int, out_dir: Path, threads: int = 2,
                 repeat: int = 2) -> list[PhaseResult]:
    """Optional: a contract of ``copies`` more columns, whose first main-pass stage outgrows the
    8,000 bytes of bytecode that HotSpot compiles by default. The full job (whole-stage methods
    up to 16,000 bytes: the local JVM compiles huge methods), the job held to the 8,000-byte limit
    as on Glue (Spark then runs that stage operator by operator), and plain Spark, in alternating
    order, best of ``repeat`` runs."""
    wide = generate_wide(data, copies, threads)
    doc = wide_contract(copies)
    names = (WIDE_JOB, WIDE_JOB_LIMITED, WIDE_PLAIN)
    timings: dict[str, list[Timing]] = {name: [] for name in names}
    written = dict.fromkeys(names, 0)
    for rep in range(repeat):
        for name in names if rep % 2 == 0 else names[::-1]:
            if name == WIDE_PLAIN:
                timing = run_plain_spark(spark, wide, out_dir / "plain", doc=doc)
            else:  # the job as configure_spark sets it up, or held to the limit it keeps on Glue
                held = mock.patch("lake_ingest._job.huge_methods_compiled", return_value=False)
                with held if name == WIDE_JOB_LIMITED else contextlib.nullcontext():
                    timing, result = run_job(spark, wide, out_dir / "job", run_id=f"bench-wide-{rep}", doc=doc)
                written[name] = result.rows_written
            timings[name].append(timing)
            logger.info("profile: %s: %.2f s", name, timing.seconds)
    written[WIDE_PLAIN] = count_parquet_rows(out_dir / "plain")  # the last run's output
    shutil.rmtree(out_dir, ignore_errors=True)
    return [_phase(name, data.size, written[name], timings[name]) for name in names]


def run_order(rep: int) -> tuple[str, ...]:
    """The contenders in the order of repeat ``rep`` (from 1): as listed on odd repeats, reversed
    on even ones, so that with two repeats each contender runs once early and once late."""
    return CONTENDERS if rep % 2 else CONTENDERS[::-1]


def bench_size(spark: SparkSession, data: Dataset, *, repeat: int = DEFAULT_REPEAT, keep: bool = False,
               profile: bool = False, threads: int = 2, wide: int = 0) -> dict[str, Any]:
    """Time the job, plain Spark and DuckDB on the same files, each in a fresh output dir.

    The contenders run in turn, in the order of ``run_order``, and the best run of each is
    reported. The first full-size run in a process is slower, whoever makes it, so a fixed order
    would charge it to the contender that goes first (measured: benchmarks/README.md).
    """
    out = data.root / "out"
    timings: dict[str, list[Timing]] = {name: [] for name in CONTENDERS}
    result = RunResult(DATASET_ID, "")
    label = f"{data.size:,} rows"

    def run(name: str, rep: int) -> Timing:
        nonlocal result
        if name == JOB_PHASE:
            timing, result = run_job(spark, data, out / _OUT_DIRS[name], run_id=f"bench-{data.size}-{rep}")
            return timing
        if name == DUCKDB_PHASE:
            return run_duckdb(data, out / _OUT_DIRS[name], threads)
        return run_plain_spark(spark, data, out / _OUT_DIRS[name], tuned=name == TUNED_PHASE)

    for rep in range(1, repeat + 1):
        tag = f" (repeat {rep}/{repeat})" if repeat > 1 else ""
        for name in run_order(rep):
            step = f"[{CONTENDERS.index(name) + 1}/{len(CONTENDERS)}] {name}"
            logger.info("%s: %s%s ...", label, step, tag)
            timings[name].append(run(name, rep))
            logger.info("%s: %s: %.2f s", label, step, timings[name][-1].seconds)
    curated_dir, quarantine_dir = job_outputs(out / "job")
    outputs = {name: out / _OUT_DIRS[name] for name in CONTENDERS} | {JOB_PHASE: curated_dir}
    phases = [_phase(name, data.size, count_parquet_rows(outputs[name]), timings[name]) for name in CONTENDERS]
    quarantined_on_disk = count_parquet_rows(quarantine_dir)
    profiled = [*profile_job(spark, data, out / "profile"), *profile_reads(spark, data),
                *profile_jsonl(spark, data, out / "profile_jsonl", threads)] if profile else []
    jsonl = {p.name: p.to_dict() for p in profiled if p.name in (JSONL_JOB, JSONL_PLAIN)}
    wide_phases = [p.to_dict() for p in profile_wide(spark, data, wide, out / "wide", threads)] if wide else []
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    job, plain, tuned, duck = phases
    return {
        "rows": data.size,
        "files": len(data.files),
        "csv_bytes": data.bytes,
        "generation_seconds": round(data.seconds, 3),
        "generation_reused": data.reused,
        "phases": [p.to_dict() for p in phases],
        "ratio_job_plain_spark": ratio(job.seconds, plain.seconds),
        "ratio_job_plain_spark_tuned": ratio(job.seconds, tuned.seconds),
        "ratio_job_duckdb": ratio(job.seconds, duck.seconds),
        "job_result": asdict(result),
        "job_quarantine_rows_on_disk": quarantined_on_disk,
        "job_parts": job_parts(job.to_dict(), plain.seconds),
        "jsonl_parts": (job_parts(jsonl[JSONL_JOB], jsonl[JSONL_PLAIN]["seconds"]) if jsonl else []),
        "profile": [p.to_dict() for p in profiled],
        "wide": {"columns": len(BENCH_CONTRACT["columns"]) + wide, "phases": wide_phases} if wide else None,
        "outputs": str(out) if keep else None,
    }


# ----------------------------------------------------------------------------- report


def target_verdict(results: Sequence[dict[str, Any]]) -> str:
    """Whether the job stays within the target ratio to plain Spark at the target size."""
    at = [r for r in results if r["rows"] == TARGET_ROWS]
    goal = f"job <= {TARGET_RATIO} x plain Spark at {TARGET_ROWS:,} rows"
    if not at:
        return f"target ({goal}): not measured ({TARGET_ROWS:,} is not among the sizes)"
    ratio = at[0]["ratio_job_plain_spark"]
    verdict = "MET" if ratio <= TARGET_RATIO else "NOT MET"
    return f"target ({goal}): {verdict} ({ratio:.2f} x)"


DRIVER_PART = "driver side (outside Spark stages)"


def ratio(seconds: float, base: float) -> float:
    """A ratio as results.json keeps it: precise enough for the report's two decimals (rounded to
    three first, 1.6746 was printed as 1.68)."""
    return round(seconds / base, 6)


def job_parts(job: dict[str, Any], plain_seconds: float) -> list[dict[str, Any]]:
    """The full job's best run by part, each against plain Spark's best run: its Spark stages
    grouped by the step that ran them (the job description ``<dataset>: <step>``), in the order
    the steps first ran, then the time outside Spark stages. The parts add up to the job's time,
    so their ratios add up to the job's ratio to plain Spark."""
    seconds: dict[str, float] = {}
    prefix = f"{DATASET_ID}: "
    for st in job["stages"]:
        step = st["label"][len(prefix):] if st["label"].startswith(prefix) else "other Spark stages"
        seconds[step] = seconds.get(step, 0.0) + st["seconds"]
    seconds[DRIVER_PART] = job["seconds"] - sum(seconds.values())
    return [{"part": name, "seconds": round(s, 3), "x_plain_spark": ratio(s, plain_seconds)}
            for name, s in seconds.items()]


def format_size(res: dict[str, Any]) -> str:
    """The table of one size."""
    lines = [
        f"== {DATASET_ID}: {res['rows']:,} rows, {res['files']} CSV files, "
        f"{res['csv_bytes'] / MIB:,.1f} MiB, {len(BENCH_CONTRACT['columns'])} columns "
        f"(generation {'reused, checked' if res['generation_reused'] else 'took'} "
        f"{res['generation_seconds']:.1f} s, not compared) ==",
        f"  {'phase':<{PHASE_WIDTH}}{'seconds':>10}{'rows/s':>12}{'peak RSS MiB':>15}{'rows out':>12}"
        f"{'job / this':>12}",
    ]
    job_s = res["phases"][0]["seconds"]
    for p in res["phases"]:
        lines.append(
            f"  {p['name']:<{PHASE_WIDTH}}{p['seconds']:>10.2f}{p['rows_per_second']:>12,.0f}"
            f"{p['peak_rss_mib']:>15,.0f}{p['rows_out']:>12,}{job_s / p['seconds']:>11.2f}x"
        )
        if len(p["all_seconds"]) > 1:
            lines.append(f"  {'':<{PHASE_WIDTH}}runs: {', '.join(f'{s:.2f}' for s in p['all_seconds'])} "
                         "(best shown)")
    r = res["job_result"]
    duck = res["phases"][-1]
    lines += [
        f"  job / plain Spark = {res['ratio_job_plain_spark']:.2f} x    "
        f"job / plain Spark with the job's Parquet settings = {res['ratio_job_plain_spark_tuned']:.2f} x    "
        f"job / DuckDB = {res['ratio_job_duckdb']:.2f} x",
        f"  job run: {r['status']}, {r['files_ingested']} files, {r['rows_read']:,} rows read, "
        f"{r['rows_written']:,} written, {r['rows_quarantined']:,} quarantined "
        f"({res['job_quarantine_rows_on_disk']:,} on disk), {r['rows_warned']:,} warned, "
        f"{r['partitions_added']} partitions",
        "  rule violations: "
        + ", ".join(f"{k}={v:,}" for k, v in sorted(r["rule_violations"].items())),
        f"  DuckDB's run: the Python process that runs it (pyspark, moto and boto3 loaded too) peaked at "
        f"{duck['peak_python_mib']:,.0f} MiB; its total includes the idle Spark JVM "
        f"({duck['peak_children_mib']:,.0f} MiB)",
    ]
    if res["profile"]:
        reads = [p for p in res["profile"] if p["name"].endswith(NOOP_SUFFIX)]
        jsonl = {p["name"]: p for p in res["profile"] if p["name"] in (JSONL_JOB, JSONL_PLAIN)}
        apart = reads + list(jsonl.values())  # reported on their own below, not as job variants
        for p in res["phases"][:2] + res["profile"]:
            if p["stages"] and p not in apart:
                lines += _format_stages(p)
        if res["phases"][0]["stages"]:  # without them every second would count as the driver's
            plain_s = res["phases"][1]["seconds"]
            lines.append(f"  --profile: the full job by part, against plain Spark's {plain_s:.2f} s:")
            for part in res["job_parts"]:
                lines.append(f"    {part['part']:<45}{part['seconds']:>8.2f} s{part['x_plain_spark']:>8.2f} x")
            lines.append(f"    {'total':<45}{job_s:>8.2f} s{job_s / plain_s:>8.2f} x")
        lines.append("  --profile (job variants, single runs):")
        for p in res["profile"]:
            if p not in apart:
                lines.append(f"    {p['name']:<30}{p['seconds']:>8.2f} s{p['peak_rss_mib']:>10,.0f} MiB"
                             f"   = {100 * p['seconds'] / job_s:.0f}% of the full job")
        if reads:
            lines.append("  --profile (reads into Spark's noop sink, best of two in alternating order):")
            base = reads[0]["seconds"]
            for p in reads:
                lines.append(f"    {p['name'][:-len(NOOP_SUFFIX)]:<36}{p['seconds']:>8.2f} s"
                             f"   = {p['seconds'] / base:.2f} x the typed read")
        if len(jsonl) == 2:
            job_j, plain_j = jsonl[JSONL_JOB]["seconds"], jsonl[JSONL_PLAIN]["seconds"]
            lines.append("  --profile (the same rows as JSON Lines, best of two in alternating order): "
                         f"full job {job_j:.2f} s, plain Spark {plain_j:.2f} s, "
                         f"job / plain Spark = {job_j / plain_j:.2f} x; the job by part:")
            for part in res.get("jsonl_parts", []):
                lines.append(f"    {part['part']:<45}{part['seconds']:>8.2f} s{part['x_plain_spark']:>8.2f} x")
    if res.get("wide"):
        wide = {p["name"]: p for p in res["wide"]["phases"]}
        plain_w = wide[WIDE_PLAIN]["seconds"]
        lines.append(f"  --wide: a contract of {res['wide']['columns']} columns, best of two in alternating order:")
        for name in (WIDE_JOB, WIDE_JOB_LIMITED, WIDE_PLAIN):
            w = wide[name]
            lines.append(f"    {name.removeprefix('wide: '):<45}{w['seconds']:>8.2f} s{w['seconds'] / plain_w:>8.2f} x"
                         f"   runs: {', '.join(f'{t:.2f}' for t in w['all_seconds'])}")
    return "\n".join(lines)


def _format_stages(phase: dict[str, Any]) -> list[str]:
    lines = [f"  --profile: Spark stages of '{phase['name']}' (wall s, task s summed over tasks, "
             "tasks, MiB in / shuffle read / shuffle write / spilled):"]
    for st in phase["stages"]:
        label = st["label"] if len(st["label"]) <= 44 else st["label"][:41] + "..."
        lines.append(f"    #{st['stage_id']:<4}{label:<45}{st['seconds']:>7.2f}"
                     f"{st['task_seconds']:>8.2f}{st['tasks']:>5}{st['input_mib']:>9,.0f}{st['shuffle_read_mib']:>7,.0f}"
                     f"{st['shuffle_write_mib']:>7,.0f}{st['spill_mib']:>7,.0f}")
    outside = phase["seconds"] - sum(st["seconds"] for st in phase["stages"])
    lines.append(f"    {'outside Spark stages (driver side)':<50}{outside:>7.2f}")
    return lines


def format_notes(driver_memory: str) -> str:
    """How to read the figures."""
    return "\n".join([
        "notes:",
        "  * peak RSS = this Python process + all its children (the Spark JVM), sampled every "
        "0.1 s and reset per phase; the highest of a contender's runs is shown, with the time of its "
        "best run.",
        f"  * the JVM heap is reserved up to spark.driver.memory ({driver_memory}) and the JVM "
        "keeps what it once committed, so Spark peaks show heap growth, not live data, and depend "
        "on which contender ran first: compare them across sizes, not across contenders.",
        "  * the job writes the columns its contract marks 'dictionary: false' without Parquet "
        "dictionary encoding; the tuned plain Spark run does the same, so 'job / plain Spark with "
        "the job's Parquet settings' is the job's own overhead.",
        "  * plain Spark keeps unparsable values as nulls (PERMISSIVE); DuckDB skips rows it "
        "cannot parse (ignore_errors); the job quarantines them with the reason.",
        "  * timings are wall clock, best of the repeats; bootstrap and warm-up are not counted.",
    ])


# ----------------------------------------------------------------------------- command line


def warm_up(spark: SparkSession, work_dir: Path, files: int, threads: int) -> None:
    """Run all three contenders once on a small dataset so JVM start-up and JIT are paid."""
    logger.info("warm-up on %s rows (not timed) ...", f"{WARMUP_ROWS:,}")
    started = time.perf_counter()
    data = generate(work_dir / "warmup", WARMUP_ROWS, files, threads)
    out = data.root / "out"
    run_job(spark, data, out / "job", run_id="bench-warmup")
    run_plain_spark(spark, data, out / "plain_spark")
    run_duckdb(data, out / "duckdb", threads)
    shutil.rmtree(out, ignore_errors=True)
    logger.info("warm-up done in %.1f s", time.perf_counter() - started)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for name in (logger.name, "lake_ingest"):
        log = logging.getLogger(name)
        log.setLevel(logging.INFO)
        log.addHandler(handler)
        log.propagate = False
    for name in ("lake_ingest.local", "lake_ingest._contract_store"):  # set-up chatter
        logging.getLogger(name).setLevel(logging.WARNING)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_ingest", description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                   help="row counts to benchmark (default: 1000000 5000000)")
    p.add_argument("--work-dir", default=".bench", help="where data and outputs go (.bench)")
    p.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                   help="runs per contender, in alternating order; the best is reported (2)")
    p.add_argument("--keep", action="store_true",
                   help="keep the Parquet outputs (the generated CSV is always kept for reuse)")
    p.add_argument("--files", type=int, default=DEFAULT_FILES, help="CSV files per size (8)")
    p.add_argument("--driver-memory", default="8g", help="Spark driver memory (8g)")
    p.add_argument("--shuffle-partitions", type=int, default=8, help="spark.sql.shuffle.partitions")
    p.add_argument("--threads", type=int, default=2, help="cores for Spark and DuckDB (2)")
    p.add_argument("--wide", type=int, default=0, metavar="COPIES",
                   help="also time, at the first size, a contract of COPIES more columns (copies of the "
                        "benchmark's): the full job, the job held to Glue's 8,000-byte method limit, and "
                        "plain Spark, best of two in alternating order (20 makes 42 columns)")
    p.add_argument("--profile", action="store_true",
                   help="also show where the time goes: the Spark stages and the full job by part "
                        "against plain Spark, single runs of job variants (no dedupe; no dedupe and no "
                        "rules), the raw-file listing and a plain all-strings Spark read, five reads "
                        "into Spark's noop sink, and the job against plain Spark on the same rows as "
                        "JSON Lines")
    args = p.parse_args(argv)
    if args.repeat < 1 or any(s < args.files for s in args.sizes):
        p.error("--repeat must be >= 1 and every size at least --files")
    if args.wide < 0:
        p.error("--wide must be a number of columns to add, 0 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _setup_logging()
    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    datasets = [generate(work_dir / str(size), size, args.files, args.threads)
                for size in args.sizes]

    from lake_ingest._spark import local_spark

    logger.info("starting local Spark (%d cores, driver memory %s, %d shuffle partitions)",
                args.threads, args.driver_memory, args.shuffle_partitions)
    spark = local_spark("bench", cores=args.threads, driver_memory=args.driver_memory,
                        shuffle_partitions=args.shuffle_partitions)
    results = []
    try:
        warm_up(spark, work_dir, args.files, args.threads)
        for i, data in enumerate(datasets):
            results.append(bench_size(spark, data, repeat=args.repeat, keep=args.keep,
                                      profile=args.profile, threads=args.threads,
                                      wide=args.wide if i == 0 else 0))
    finally:
        spark.stop()

    print()
    for res in results:
        print(format_size(res))
        print()
    verdict = target_verdict(results)
    print(verdict)
    print(format_notes(args.driver_memory))
    report = {
        "benchmark": "bench_ingest",
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(),
                    "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(), "pyspark": pyspark.__version__,
                    "duckdb": duckdb.__version__},
        "settings": {"sizes": args.sizes, "files": args.files, "repeat": args.repeat,
                     "driver_memory": args.driver_memory, "threads": args.threads,
                     "shuffle_partitions": args.shuffle_partitions, "profile": args.profile,
                     "wide": args.wide},
        "target": verdict,
        "results": results,
    }
    path = work_dir / "results.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
