"""The ingest of one dataset: plan files, read, validate, write, commit, record."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.util
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import unquote

from py4j.protocol import Py4JJavaError
from pyspark.errors.exceptions.captured import CapturedException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from . import _catalog as catalog
from . import _metrics as metrics
from ._aws import AwsClients
from ._contract import (
    INGESTED_AT_COL,
    RUN_ID_COL,
    SOURCE_FILE_COL,
    Contract,
    ContractError,
    ascii_compatible,
    is_column_name,
)
from ._contract_store import ContractStore
from ._reader import (
    ReadGroup,
    counts_header_lines,
    group_files,
    json_line_keys,
    json_splits_at_lf_only,
    parquet_schema,
    read_files,
    read_key_columns,
    rewritten_by_spark,
    spark_paths,
    write_parquet,
)
from ._sniff import EMPTY as EMPTY_FILE
from ._sniff import FAILED as SNIFF_FAILED
from ._sniff import (
    HEAD_BYTES,
    OK,
    Sniff,
    check_columns,
    parquet_footer,
    parquet_footer_length,
    sniff,
    sniff_parquet,
)
from ._spark import huge_methods_compiled
from ._state import (
    ABANDONED,
    COMMITTING,
    EMPTY,
    FAILED,
    FAILED_FILE,
    INGESTED,
    RUNNING,
    SAME_CONTENT,
    SUCCEEDED,
    DatasetLocked,
    LedgerEntry,
    StateStore,
    dumps,
    file_id,
    iso,
    utcnow,
)
from ._storage import ArchivedObjectError, ObjectInfo, Storage, join, storage_for
from ._transforms import (
    PENDING,
    RAW_RECORD_COL,
    REJECTED,
    VALID_COL,
    VIOLATIONS_COL,
    drop_metric_columns,
    observed_metrics,
    pending_metrics,
    quarantine_metrics,
    quarantine_rows,
    repeated_keys,
    resolve_pending,
    staged,
    validate,
    window_key_sets,
)

#: A run that found another run holding its dataset's lock, and did nothing.
LOCKED = "LOCKED"
#: Run statuses that fail a Glue job run: the run failed, or it did nothing for a lock held.
FAILS_A_GLUE_RUN = (FAILED, LOCKED)
logger = logging.getLogger(__name__)
_T = TypeVar("_T")

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # one safe path segment (no ":" for Hadoop)
VIOLATION_HIVE_TYPE = "array<struct<rule:string,action:string,detail:string>>"
LINEAGE_COLUMNS = ((SOURCE_FILE_COL, "string"), (INGESTED_AT_COL, "timestamp"))
#: The zones a run writes, in the order of ``_IngestRun._roots``.
CURATED, QUARANTINE = ZONES = ("curated", "quarantine")
#: A run's commit manifest, beside its curated files (Spark, Hive and Athena skip names that
#: start with an underscore).
COMMIT_MANIFEST = "_lake_commit.json"
#: Below its run's prefix, each attempt of a run id writes under ``lake_attempt=<attempt id>/``.
ATTEMPT_DIR = "lake_attempt"
#: Above this many repeated key values, de-duplication shuffles every row in one window instead
#: of broadcasting the repeated keys and settling their rows after the main pass.
MAX_REPEATED_KEYS = 1_000_000
#: Parquet footers are read with pyarrow when it is installed (it is locally), else with Spark.
HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None
#: Up to this many pending rows are settled in one task, without a shuffle.
SETTLE_IN_ONE_TASK = 200_000
#: Verdict of a file removed or replaced while the run read it: not recorded, looked at again later.
GONE = "gone"
#: The reason of a file left for later because the job may not read it.
NOT_READABLE = "not readable by the job"
REDELIVERED = "redelivered"  # the same bytes under the same key were ingested before


class DataQualityError(RuntimeError):
    """Rows broke a rule whose action is ``fail``; the run wrote nothing visible."""


class CommitRefused(RuntimeError):
    """The run's commit point was refused: its record no longer belongs to this attempt (another
    attempt of the run id took it over, or another run's recovery gave the run up). Nothing of this
    attempt becomes visible, and what it wrote is removed."""


class CommitBlocked(RuntimeError):
    """An earlier run stopped in its commit and its manifest is missing or altered: no run of the
    dataset starts until the manifest is restored (the run did not start)."""


@dataclass(frozen=True)
class JobSettings:
    """Where the job finds its state and its zones; the same fields on AWS and on a laptop.

    The zone URIs are ``s3://bucket[/prefix]`` on AWS and directories locally.
    """

    raw_uri: str
    curated_uri: str
    quarantine_uri: str
    contracts_table: str = "datalake-contracts"
    ledger_table: str = "datalake-file-ledger"
    runs_table: str = "datalake-runs"
    metrics_namespace: str = "DataLake/Ingest"
    lock_lease_seconds: int = 7200
    max_files_per_run: int = 500

    def bucket_uri(self, bucket: str) -> str:
        """The raw zone for ``raw``; another bucket by name (a sibling directory locally)."""
        if bucket == "raw":
            return self.raw_uri
        if self.raw_uri.startswith("s3://"):
            return f"s3://{bucket}"
        return join(self.raw_uri.rstrip("/").rsplit("/", 1)[0], bucket)


@dataclass
class RunResult:
    """What one run did; also the shape of the run record and of the metrics."""

    dataset_id: str
    run_id: str
    status: str = RUNNING
    files_seen: int = 0
    files_skipped: int = 0
    files_pending: int = 0
    files_ingested: int = 0
    files_empty: int = 0
    files_failed: int = 0
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_warned: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    partitions_added: int = 0
    seconds: float = 0.0
    added_columns: list[str] = field(default_factory=list)
    rule_violations: dict[str, int] = field(default_factory=dict)
    failed_files: dict[str, str] = field(default_factory=dict)
    message: str = ""

    @classmethod
    def from_record(cls, record: dict[str, Any], **overrides: Any) -> RunResult:
        """A result rebuilt from its run record in DynamoDB (attributes it does not know are ignored)."""
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, **overrides})

    def counts(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("dataset_id", "run_id")}


@dataclass(frozen=True)
class PlannedFile:
    obj: ObjectInfo
    verdict: str
    reason: str = ""
    columns: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # Parquet: the physical type of each column
    checksum: str = ""  # the content id (Storage.content_id)


#: Spark's whole-stage method limit where the JVM compiles methods above HotSpot's 8000 bytes.
HUGE_METHOD_LIMIT = "16000"


def configure_spark(spark: SparkSession) -> None:
    """Session settings the job relies on, applied the same way on Glue and locally."""
    for key, value in {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.legacy.timeParserPolicy": "CORRECTED",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # Dates and times before 1582-10-15 (an ERP's 0001-01-01) are written as they are, in the
        # proleptic Gregorian calendar that Athena (Trino) reads; Spark would refuse to write them.
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
        "spark.sql.sources.partitionOverwriteMode": "static",
        # The transforms write some expressions as SQL text with backslash escapes in strings.
        "spark.sql.parser.escapedStringLiterals": "false",
        # A wide contract makes a whole-stage method larger than HotSpot compiles by default (8000
        # bytes of bytecode); such a stage would run interpreted, several times slower. With this
        # limit Spark falls back to per-operator code for those stages only (measured: -15% at
        # 1 M rows). A JVM told to compile huge methods (a local session) keeps whole-stage code
        # up to 16000 bytes, which was faster still at 42 columns; at 62 and 82 columns it was no
        # faster than per-operator code (benchmarks/README.md, "Wide contracts").
        "spark.sql.codegen.hugeMethodLimit": HUGE_METHOD_LIMIT if huge_methods_compiled(spark) else "8000",
    }.items():
        spark.conf.set(key, value)


def run_ingest(
    spark: SparkSession,
    dataset_id: str,
    run_id: str,
    settings: JobSettings,
    clients: AwsClients | None = None,
    *,
    storage: Storage | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Ingest every new raw file of one dataset, exactly once.

    Parameters
    ----------
    spark
        The session: Glue's on AWS, a local one on a laptop.
    dataset_id, run_id
        Which contract to run and the id of this run (a Step Functions execution name on AWS).
    settings
        Tables, zones and limits.
    clients
        boto3 clients (moto locally); the default session when None.
    storage
        Object storage for listing and small reads; chosen from the raw URI when None.
    on_progress
        Called with a short line at each step (the demo prints them).

    Returns
    -------
    RunResult
        Counts and status. Raises ContractError for a missing or invalid contract, and
        re-raises any error that failed the run after recording it.
    """
    if not RUN_ID_PATTERN.match(run_id):
        raise ValueError(f"run id '{run_id}' must match {RUN_ID_PATTERN.pattern}")
    clients = clients or AwsClients()
    job = _IngestRun(spark, dataset_id, run_id, settings, clients, storage, on_progress)
    return job.run()


class _IngestRun:
    def __init__(self, spark: SparkSession, dataset_id: str, run_id: str, settings: JobSettings,
                 clients: AwsClients, storage: Storage | None,
                 on_progress: Callable[[str], None] | None) -> None:
        self.spark = spark
        self.dataset_id = dataset_id
        self.run_id = run_id
        # An attempt of the run id (a Glue run; a start can be retried while the first is alive):
        # it writes below its own prefix, and commits only while the run record is still its own.
        self.attempt = uuid.uuid4().hex[:12]
        self.others_seen = False  # another attempt of the run id was seen (see _sweep)
        self.settings = settings
        self.clients = clients
        self.state = StateStore(clients.dynamodb, settings.ledger_table, settings.runs_table)
        self.storage = storage or storage_for(settings.raw_uri, lambda: clients.s3)
        self.out_storage = storage or storage_for(settings.curated_uri, lambda: clients.s3)
        self.progress = on_progress or (lambda msg: None)
        self.result = RunResult(dataset_id, run_id)
        self.extra: list[str] = []  # new columns admitted by an additive policy, once the run knows them
        self.started = time.monotonic()

    def say(self, msg: str, level: int = logging.INFO) -> None:
        logger.log(level, "[%s/%s] %s", self.dataset_id, self.run_id, msg)
        self.progress(msg)

    # ------------------------------------------------------------------ flow
    def run(self) -> RunResult:
        contract = ContractStore(self.clients.dynamodb, self.settings.contracts_table).get(self.dataset_id)
        _check_patterns(self.spark, contract)
        self.contract = contract
        configure_spark(self.spark)
        if not contract.enabled:
            self.say("contract is disabled; nothing to do")
            self.result.status = "DISABLED"
            return self.result
        try:
            with self.state.dataset_lock(self.dataset_id, self.run_id, self.settings.lock_lease_seconds,
                                         attempt=self.attempt):
                return self._locked_run()
        except DatasetLocked as exc:
            self.say(str(exc))
            self.result.status = LOCKED
            self.result.message = str(exc)
            return self.result

    def _locked_run(self) -> RunResult:
        self._recover()
        previous = self.state.get_run(self.dataset_id, self.run_id)
        if previous and previous.get("status") == SUCCEEDED:
            self.say("this run id already succeeded; nothing to do")
            return RunResult.from_record(previous)
        try:
            replaced = self.state.start_run(self.dataset_id, self.run_id,
                                            {"contract_version": self.contract.version, "attempt": self.attempt})
            # another attempt of the run id started before: it may live on, and write after it is removed
            self.others_seen = replaced.get("attempt") not in (None, self.attempt)
        except self.clients.dynamodb.exceptions.ConditionalCheckFailedException:
            # another attempt of the run id passed its commit point since the recovery above read
            # the record: complete that commit (as the recovery would), and report the run
            now = self.state.get_run(self.dataset_id, self.run_id) or {}
            if now.get("status") == COMMITTING:
                self._complete_commit(now)
                now = self.state.get_run(self.dataset_id, self.run_id) or now
            self.say(f"another attempt of this run id committed it (its record says {now.get('status')})")
            return RunResult.from_record(now)
        logger.info("[%s/%s] attempt %s started", self.dataset_id, self.run_id, self.attempt)  # (in the logs only)
        # The record first, then the lock: a run that takes the lock after this read finds the record
        # in its recovery (and gives this run up if it is still RUNNING). A lock lost before (released
        # while this run waited to start) may be held by a run that did not see the record: stop.
        if not self.state.holds_lock(self.dataset_id, self.run_id):  # (a recovery may have given it up already)
            # not marked cleaned: the record it replaced may be a failed attempt's, whose files the
            # next recovery removes
            self.state.try_update_run(self.dataset_id, self.run_id, {"status": ABANDONED}, RUNNING,
                                      attempt=self.attempt)
            raise DatasetLocked(f"the lock of dataset '{self.dataset_id}' was released before run {self.run_id} "
                                "started (its task timed out, or the lease ended); the run did nothing")
        try:
            self._ingest()
        except Exception as exc:
            try:
                self._fail(exc)
            except Exception:  # the failure it reports is the run's, not this one
                logger.exception("run %s: recording its failure failed too", self.run_id)
            exc.run_result = self.result  # type: ignore[attr-defined]  # what the local command prints
            raise
        return self.result

    def _ingest(self) -> None:
        result = self.result
        planned = self._plan()
        ingested_at = utcnow()
        commit: dict[str, Any] = {"files": [], "tables": []}
        commit["tables"], planned = self._write_readable(planned, ingested_at)
        readable = [p for p in planned if p.verdict == OK]
        gone = [p for p in planned if p.verdict == GONE]
        planned = [p for p in planned if p.verdict != GONE]
        planned = [replace(p, reason=_short(p.reason)) for p in planned]
        for p in planned:
            state = {OK: INGESTED, SNIFF_FAILED: FAILED_FILE, REDELIVERED: SAME_CONTENT}.get(p.verdict, EMPTY)
            commit["files"].append({"key": p.obj.key, "etag": p.obj.etag, "size": p.obj.size, "state": state,
                                    "reason": p.reason, "checksum": p.checksum})
        again = sum(1 for p in planned if p.verdict == REDELIVERED)
        result.files_pending += len(gone)
        result.files_skipped += again
        result.files_ingested = len(readable)
        result.files_empty = sum(1 for p in planned if p.verdict not in (OK, SNIFF_FAILED, REDELIVERED))
        result.files_failed = sum(1 for p in planned if p.verdict == SNIFF_FAILED)
        result.failed_files = {p.obj.key: p.reason for p in planned if p.verdict == SNIFF_FAILED}
        result.bytes_read = sum(p.obj.size for p in readable)
        if len(planned) == again:
            result.message = "nothing new to ingest" + (f" ({_count(again, 'file')} delivered again with the same "
                                                        "content)" if again else "")
        # Tables are created or gain their new columns before the commit point: that shows no row,
        # and a table definition Glue refuses then fails this run instead of every commit after it.
        roots = dict(zip(ZONES, self._roots(), strict=True))
        result.added_columns = self._ensure_tables(commit["tables"], roots)
        where = self._write_manifest(commit, roots)
        result.seconds = round(time.monotonic() - self.started, 3)  # what a recovery reports if this run dies
        # The commit point: once the run record says COMMITTING, the run will become visible,
        # if not now then by the recovery step of the next run. It is refused when another run's
        # recovery gave this run up first (ABANDONED: its lock was released while it ran), or when
        # another attempt of the run id took the record over (then that attempt is the run).
        if self.state.try_update_run(self.dataset_id, self.run_id,
                                     {**_record(result), "status": COMMITTING, **where, "metrics_published": False},
                                     RUNNING, attempt=self.attempt) is None:
            now = self.state.get_run(self.dataset_id, self.run_id) or {}
            raise CommitRefused(f"run {self.run_id} of {self.dataset_id}: the commit point of attempt {self.attempt} "
                                f"was refused; the run record says {now.get('status')}"
                                + (f" for attempt {now['attempt']}" if now.get("attempt") not in (None, self.attempt)
                                   else "") + " (another attempt took the run over, or another run's recovery gave "
                                "it up): nothing of this attempt becomes visible")
        result.partitions_added = self._finish_commit(self.run_id, commit, roots)
        others = self._clean_other_attempts(self.run_id, self.attempt) or self.others_seen
        result.seconds = round(time.monotonic() - self.started, 3)
        result.status = SUCCEEDED
        # Whichever of this run and a recovery moves the record from COMMITTING to SUCCEEDED
        # publishes the counts, the other does not: they are counted once.
        done = {**_record(result), "status": SUCCEEDED, "ended_at": iso(utcnow()), "metrics_published": True,
                **self._sweep_later(bool(others))}
        ours = self.state.try_update_run(self.dataset_id, self.run_id, done, COMMITTING, unpublished=True) is not None
        if not ours:  # refused: a recovery's write, or this write itself, applied but its answer lost and retried
            now = self.state.get_run(self.dataset_id, self.run_id) or {}
            ours = now.get("status") == SUCCEEDED and "recovered_by" not in now
        if ours:
            self._publish(result.counts(), succeeded=True)
        else:
            self.say("another run's recovery completed this run's commit first and counted it")
        self.say(result.message or f"done: {result.files_ingested} files, {result.rows_read} rows read, "
                 f"{result.rows_written} written, {result.rows_quarantined} quarantined")

    # -------------------------------------------------------------- planning
    def _plan(self) -> list[PlannedFile]:
        contract, result = self.contract, self.result
        root = self.settings.bucket_uri(contract.source.bucket)
        objects = list(self.storage.list(root, contract.source.prefix, keep=contract.source.matches))
        ledger = self.state.ledger(self.dataset_id)
        new = [o for o in objects if file_id(o.key, o.etag) not in ledger]
        result.files_seen = len(objects)
        result.files_skipped = len(objects) - len(new)
        limit = self.settings.max_files_per_run
        self.say(f"{len(objects)} files match, {result.files_skipped} already in the ledger, {len(new)} new"
                 + (f"; at most {limit} are taken" if len(new) > limit else ""))
        ingested = {(e.key, e.checksum): e for e in ledger.values() if e.checksum and e.state == INGESTED}
        planned: list[PlannedFile] = []
        taken = 0
        # Files are checked in key order until the run has its limit of files to record; one
        # that is gone or archived takes no place, or enough of them would stop the dataset.
        for i, obj in enumerate(new):
            if taken == limit:
                result.files_pending = len(new) - i
                self.say(f"{result.files_pending} new files left for the next run")
                break
            planned.append(self._check_new(obj, ingested))
            taken += planned[-1].verdict != GONE
        denied = [p for p in planned if p.verdict == GONE and p.reason.startswith(NOT_READABLE)]
        if denied and len(denied) == len(planned):
            # Not one new file may be read: the job's role or key policy, more likely than each
            # producer's. Left pending, the dataset would look healthy for days; failed, it alarms.
            raise PermissionError(f"the job may read none of the {_count(len(denied), 'new file')} "
                                  f"({denied[0].reason.removeprefix(NOT_READABLE + ': ')}): its role, the bucket "
                                  "policy or a KMS key refuses it; nothing was recorded, and a run after the fix "
                                  "ingests them")
        if contract.format.type == "jsonl":
            planned = self._with_every_key(planned)
        for p in planned:
            if p.verdict != OK:
                self.say(f"{p.obj.key}: {p.verdict} ({p.reason})",
                         logging.WARNING if p.verdict == SNIFF_FAILED else logging.INFO)
        return planned

    def _with_every_key(self, planned: list[PlannedFile]) -> list[PlannedFile]:
        """JSON Lines: judge each file by every key of every record, not only those of the
        records the sniffer read. A key that first appears further down is a new column like any
        other (added under the additive policy, refused under strict); unseen, its values would
        be dropped without a word. One Spark pass lists the keys of all the files. A file that
        cannot be read to the end fails alone (found as in ``_unreadable``), one removed since
        the listing is left for later; one with a line that holds a JSON array fails (see
        ``json_line_keys``). An encoding that is not ASCII-compatible
        (UTF-16) cannot be split into lines before decoding; a JSON Lines contract that names one
        is refused when it is validated, and such files would keep the keys the sniffer read."""
        ok = [p for p in planned if p.verdict == OK]
        encoding = self.contract.format.encoding
        if not ok or not ascii_compatible(encoding):
            return planned
        description = f"{self.dataset_id}: list the keys of {len(ok)} JSON Lines files"

        def keys_of(group: Sequence[PlannedFile]) -> list[Any]:
            self.spark.sparkContext.setJobDescription(description)
            try:
                reader = self.spark.read.option("lineSep", "\n") if json_splits_at_lf_only(encoding) else self.spark.read
                frame = reader.text(spark_paths([p.obj.uri for p in group]))
                return json_line_keys(frame.withColumn("file", F.input_file_name()), encoding).collect()
            finally:
                self.spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]

        def read_through(group: Sequence[PlannedFile]) -> str | None:
            try:
                keys_of(group)
                return None
            except (Py4JJavaError, CapturedException) as exc:
                return f"cannot be read to the end: {_root_cause(exc)}"

        try:
            rows = keys_of(ok)
            broken: dict[str, str] = {}
        except (Py4JJavaError, CapturedException) as exc:
            self.say(f"listing the keys failed ({_root_cause(exc)}); reading the files again, in halves")
            broken = {p.obj.key: reason
                      for p, reason in find_failing(ok, lambda group: self._blamed_twice(group, read_through))}
            if not broken:
                raise
            rows = keys_of([p for p in ok if p.obj.key not in broken])
        still_there = self._unchanged({p.obj.key: p.obj.size for p in ok if p.obj.key in broken}) if broken else set()
        keys: dict[str, set[str]] = {}
        problems: dict[str, set[str]] = {}
        for row in rows:  # a file is listed even when no line has a key (a null key then)
            path = _path_key(unquote(row["file"]))
            keys.setdefault(path, set())
            if row["key"] is not None:
                keys[path].add(row["key"])
            if row["problem"] is not None:
                problems.setdefault(path, set()).add(row["problem"])
        out = []
        for p in planned:
            if p.verdict == OK and p.obj.key in broken:
                p = _unreadable_verdict(p, broken, still_there)
            elif p.verdict == OK and problems.get(_path_key(p.obj.uri)):
                p = replace(p, verdict=SNIFF_FAILED, reason="; ".join(sorted(problems[_path_key(p.obj.uri)])))
            elif p.verdict == OK:
                found = keys.get(_path_key(p.obj.uri))
                if found is None:  # every file with a line is listed, with a null key if need be
                    raise RuntimeError(f"the key listing named no file {p.obj.uri}")
                unseen = sorted(found - set(p.columns))
                if unseen:
                    verdict = check_columns([*p.columns, *unseen], self.contract, sparse=True)
                    p = replace(p, verdict=verdict.status, reason=verdict.reason, columns=verdict.columns,
                                extra=verdict.extra)
            out.append(p)
        return out

    def _check_new(self, obj: ObjectInfo, ingested: dict[tuple[str, str], LedgerEntry]) -> PlannedFile:
        """A file not in the ledger by key and ETag: the same bytes under the same key again (an
        ETag depends on how the file was uploaded and, with SSE-KMS, is no digest at all) are
        known by the content id (``ingested``: the ingested files by key and content id), and
        not read again; any other file is checked."""
        cid = self.storage.content_id(obj)
        earlier = ingested.get((obj.key, cid)) if cid else None
        if earlier is not None:
            self.say(f"{obj.key}: delivered again with the same content, which run {earlier.run_id} ingested")
            return PlannedFile(obj, REDELIVERED, f"the same content as the delivery run {earlier.run_id} ingested",
                               checksum=cid)
        return replace(self._check(obj), checksum=cid)

    def _check(self, obj: ObjectInfo) -> PlannedFile:
        """The file's verdict from its first bytes (or Parquet footer); a file removed since the
        listing is gone, not failed, so that a later run looks at it again."""
        try:
            return self._checked(obj)
        except FileNotFoundError:
            self.say(f"{obj.key}: removed since it was listed; left for a later run")
            return PlannedFile(obj, GONE, "removed since it was listed")
        except ArchivedObjectError:  # not failed: a restore keeps the ETag, and a later run reads it
            self.say(f"{obj.key}: in an archive storage class; restore it and a later run ingests it")
            return PlannedFile(obj, GONE, "archived: restore it to ingest it")
        except PermissionError as exc:  # not failed either: once it may read it, a later run does
            self.say(f"{obj.key}: the job may not read it ({exc}); left for a later run", logging.WARNING)
            return PlannedFile(obj, GONE, f"{NOT_READABLE}: {exc}")

    def _checked(self, obj: ObjectInfo) -> PlannedFile:
        contract = self.contract
        if rewritten_by_spark(obj.key):
            return PlannedFile(obj, SNIFF_FAILED, "the key has an empty, '.' or '..' path segment, which Spark's "
                                                  "file system drops or resolves, so it would read another object; "
                                                  "deliver the file under a key without one")
        if contract.format.type != "parquet":
            # Spark (Hadoop) picks the decompression by the name's extension, not by the contract
            named_gz = obj.key.endswith(".gz")
            if contract.format.compression == "gzip" and not named_gz:
                return PlannedFile(obj, SNIFF_FAILED, "the contract says gzip, but the name does not end in .gz, "
                                                      "and Spark decompresses by the extension")
            if contract.format.compression == "none" and named_gz:
                return PlannedFile(obj, SNIFF_FAILED, "the name ends in .gz, which Spark decompresses, but the "
                                                      "contract says compression: none")
        types: tuple[str, ...] = ()
        if contract.format.type == "parquet":
            tail = self._read_range(obj, -8, 8)  # footer length and magic bytes
            verdict = sniff_parquet(self._read_range(obj, 0, 4), tail, obj.size)
            if verdict.status == OK:
                try:
                    schema, rows = self._parquet_footer(obj, tail)
                except (FileNotFoundError, PermissionError, ArchivedObjectError):
                    raise
                except Exception as exc:
                    msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                    return PlannedFile(obj, SNIFF_FAILED, f"unreadable Parquet footer: {msg}")
                verdict = check_columns([name for name, _ in schema], contract)
                if verdict.status == OK and rows == 0:  # a writer's file of an empty partition, say
                    verdict = Sniff(EMPTY_FILE, "Parquet file holds no rows")
                types = tuple(t for _, t in schema)
        else:
            head = self._read_range(obj, 0, HEAD_BYTES)
            try:
                verdict = sniff(head, obj.size, contract)
            except Exception as exc:  # a check of a file's bytes must not stop the dataset's other files
                logger.warning("%s: checking %s raised", self.dataset_id, obj.key, exc_info=True)
                return PlannedFile(obj, SNIFF_FAILED, f"its first bytes could not be checked: "
                                                      f"{type(exc).__name__}: {str(exc)[:300]}")
        return PlannedFile(obj, verdict.status, verdict.reason, verdict.columns, verdict.extra, types)

    def _read_range(self, obj: ObjectInfo, start: int, length: int) -> bytes:
        """Bytes of a listed object; none for an empty one, whose every range S3 refuses (416)."""
        return self.storage.read_range(obj.uri, start, length) if obj.size else b""

    def _parquet_footer(self, obj: ObjectInfo, tail: bytes) -> tuple[tuple[tuple[str, str], ...], int | None]:
        """A Parquet file's columns and types, and its number of rows, from its footer (``tail``:
        its last 8 bytes), read with one more ranged read and parsed by pyarrow; or the columns
        from a small Spark read where pyarrow is missing, and no number of rows (a file of none
        is then read, and counted as ingested with no rows)."""
        if not HAVE_PYARROW:
            return parquet_schema(self.spark, obj.uri), None
        length = parquet_footer_length(tail, obj.size)
        return parquet_footer(self.storage.read_range(obj.uri, -(length + 8), length + 8))

    # ------------------------------------------------------- transform/write
    def _write_readable(self, planned: list[PlannedFile],
                        ingested_at: dt.datetime) -> tuple[list[dict[str, Any]], list[PlannedFile]]:
        """Write the files that passed the checks. A file can pass them and still fail to read to
        the end (a gzip stream cut short by an interrupted upload, a corrupt Parquet page), which
        fails Spark's pass without naming the file. Then the files are read again to find those
        that fail on their own (``find_failing``); they become failed files with Spark's reason,
        what this attempt's pass wrote is removed, and the pass runs again over the others. A failure that
        no single file causes fails the run.

        Returns the tables to commit and the plan with the unreadable files marked failed, or
        gone when they were removed or replaced since the listing (not recorded then).
        """
        while True:
            readable = [p for p in planned if p.verdict == OK]
            if not readable:
                return [], planned
            try:
                return self._transform_and_write(readable, ingested_at), planned
            except (Py4JJavaError, CapturedException) as exc:
                self.say(f"the pass failed ({_root_cause(exc)}); reading its {_count(len(readable), 'file')} "
                         "again, in halves, to find the cause")
                unreadable = self._unreadable(readable)
                if not unreadable:
                    raise
                removed = self._clean_attempt()  # another attempt of the run id may be alive, or committed
                still_there = self._unchanged({p.obj.key: p.obj.size for p in readable if p.obj.key in unreadable})
                for key, reason in unreadable.items():
                    self.say(f"{key}: failed ({reason})" if key in still_there else
                             f"{key}: removed or replaced since it was listed; left for a later run", logging.WARNING)
                self.say(f"removed the {_count(removed, 'file')} the pass wrote; running it again without "
                         f"{_count(len(unreadable), 'unreadable file')}")
                planned = [_unreadable_verdict(p, unreadable, still_there) for p in planned]

    def _blamed_twice(self, group: Sequence[PlannedFile],
                      read_through: Callable[[Sequence[PlannedFile]], str | None]) -> str | None:
        """Why a group of files cannot be read to the end, or None; a single file is read once
        more before it is blamed, as a failed file stays failed until it changes and a first
        failure may be the cluster's (a lost executor), not the file's (so each failing file costs
        one read more than ``find_failing`` counts)."""
        reason = read_through(group)
        if reason is None or len(group) > 1:
            return reason
        if read_through(group) is None:
            self.say(f"{group[0].obj.key}: read to the end on a second try (the first: {reason}); not failed",
                     logging.WARNING)
            return None
        return reason

    def _unchanged(self, sizes: dict[str, int]) -> set[str]:
        """Which of these raw files are still listed with the same size (a file removed or
        replaced during the run is not recorded, so that a later run looks at it again)."""
        contract = self.contract
        root = self.settings.bucket_uri(contract.source.bucket)
        return {o.key for o in self.storage.list(root, contract.source.prefix, etags=False, keep=sizes.__contains__)
                if sizes[o.key] == o.size}

    def _unreadable(self, files: Sequence[PlannedFile]) -> dict[str, str]:
        """The files Spark cannot read to the end on their own: key -> reason (see
        ``find_failing``: a few Spark reads even for hundreds of files; ``_blamed_twice``)."""
        reads = 0

        def read_through(group: Sequence[PlannedFile]) -> str | None:
            nonlocal reads
            reads += 1
            self.spark.sparkContext.setJobDescription(
                f"{self.dataset_id}: read {len(group)} of {len(files)} files to find unreadable ones (read {reads})")
            try:
                frame = read_files(self.spark, group_files([(p.obj.uri, self._read_columns(p), p.types)
                                                            for p in group]),
                                   self.contract)
            except (Py4JJavaError, CapturedException) as exc:
                # A text reader with a given schema reads no data before it runs: only a missing
                # file is the files' fault; an I/O error (the store refused or failed a listing)
                # is no file's nor the contract's, and stops the run as it is; anything else is
                # the contract's, for every file.
                if self.contract.format.type != "parquet" and _error_class(exc) != "PATH_NOT_FOUND":
                    if _caused_by_io(self.spark, exc):
                        raise
                    raise ContractError(self.dataset_id, [
                        f"format: Spark refuses the contract's reader settings before reading any file: "
                        f"{_root_cause(exc)}"]) from exc
                return f"cannot be read: {_root_cause(exc)}"
            try:
                frame.write.format("noop").mode("overwrite").save()
                return None
            except (Py4JJavaError, CapturedException) as exc:
                return f"cannot be read to the end: {_root_cause(exc)}"

        try:
            failing = find_failing(list(files), lambda group: self._blamed_twice(group, read_through))
        finally:
            self.spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
        self.say(f"{_count(reads, 'read')} of {_count(len(files), 'file')}: {len(failing)} cannot be read to the end")
        return {p.obj.key: reason for p, reason in failing}

    def _transform_and_write(self, files: Sequence[PlannedFile], ingested_at: dt.datetime) -> list[dict[str, Any]]:
        """One Spark pass writes the valid rows under ``lake_valid=true``, the rejected ones under
        ``lake_valid=false`` and the rows of repeated keys under ``lake_valid=pending`` of the
        attempt's prefix. The pending rows are then settled (de-duplication, unique rules) and the
        rejected rows (few) moved to the quarantine zone. Nothing of it is visible until the
        commit registers partitions."""
        contract, result, spark = self.contract, self.result, self.spark
        extra = self.extra = self._extra_columns(files)
        for spec in (self._curated_spec(extra), self._quarantine_spec(extra)):
            catalog.check_table(self.clients.glue, spec)  # a conflict fails the run before any write
        groups = group_files([(p.obj.uri, self._read_columns(p), p.types) for p in files])
        frame = read_files(spark, groups, contract)
        curated_root, quarantine_root = self._roots()
        run_root = self._attempt_prefix(curated_root)
        partitions = [VALID_COL, *contract.partition_by]
        self.say(f"reading {len(files)} files ({sum(p.obj.size for p in files):,} bytes) in {len(groups)} "
                 "layout group(s)")
        repeated: dict[tuple[str, ...], DataFrame] | None = {}
        try:
            repeated = self._repeated_keys(groups)
            validated = validate(frame, contract, self.run_id, ingested_at, extra, repeated)
            observation = Observation(f"ingest_{self.dataset_id}")
            observed = validated.observe(observation, *observed_metrics(validated, contract))
            out = staged(observed, contract, extra).drop(RUN_ID_COL)
            spark.sparkContext.setJobDescription(f"{self.dataset_id}: read, validate, write")
            write_parquet(out, run_root, partitions, plain_encoded=contract.plain_encoded)
            counts = {k: int(v or 0) for k, v in observation.get.items()}
            if counts["rows_pending"]:
                self._resolve_pending(run_root, out.schema, extra, counts)
            if counts["rows_quarantined"]:
                spark.sparkContext.setJobDescription(f"{self.dataset_id}: move rejected rows to quarantine")
                rejected_root = join(run_root, f"{VALID_COL}={REJECTED}")
                rejected = self._read_staged(rejected_root, out.schema).withColumns(
                    {RUN_ID_COL: F.lit(self.run_id), VALID_COL: F.lit(REJECTED)})
                moved = Observation(f"quarantine_{self.dataset_id}")
                rows = quarantine_rows(rejected, contract, extra)
                write_parquet(rows.observe(moved, *quarantine_metrics(contract)).drop(RUN_ID_COL),
                              self._attempt_prefix(quarantine_root))
                counts |= {k: int(v or 0) for k, v in moved.get.items()}
                self.out_storage.delete_prefix(rejected_root)
            result.rows_read = counts["rows_read"]
            result.rows_quarantined = counts["rows_quarantined"]
            result.rows_written = result.rows_read - result.rows_quarantined
            result.rows_warned = counts["rows_warned"]
            result.rule_violations = {k[5:]: v for k, v in counts.items() if k.startswith("rule:") and v}
        finally:
            spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
            for keys_df in (repeated or {}).values():
                keys_df.unpersist()
        if counts["rows_failing"]:
            broken = {r.name: result.rule_violations.get(r.name, 0) for r in contract.rules if r.action == "fail"}
            raise DataQualityError(f"{counts['rows_failing']} rows break rules whose action is 'fail': "
                                   + ", ".join(f"{k}={v}" for k, v in broken.items() if v))
        tables = [self._table_commit(CURATED, self._curated_spec(extra), contract.partition_by, f"{VALID_COL}=true/")]
        if result.rows_quarantined:
            tables.append(self._table_commit(QUARANTINE, self._quarantine_spec(extra), ()))
        return tables

    def _read_columns(self, p: PlannedFile) -> tuple[str, ...]:
        """The columns to read from a file: those it holds; for JSON Lines also every column the
        table has gained (``self.extra``: a record may carry a key that the sniffed head did not
        show)."""
        if self.contract.format.type != "jsonl":
            return p.columns
        return tuple(dict.fromkeys([*p.columns, *self.extra]))

    def _repeated_keys(self, groups: Sequence[ReadGroup]) -> dict[tuple[str, ...], DataFrame] | None:
        """For each key set of the de-duplication and the unique rules: the key values that occur
        more than once in the batch (cached, to be broadcast). None when there are so many that
        shuffling every row is the better plan."""
        out: dict[tuple[str, ...], DataFrame] = {}
        cached: list[DataFrame] = []  # released here when this fails: the caller never sees them
        try:
            for keys in window_key_sets(self.contract):
                self.spark.sparkContext.setJobDescription(f"{self.dataset_id}: find repeated {', '.join(keys)}")
                names = [self.contract.column(k).source_name for k in keys]
                raw_keys = read_key_columns(self.spark, groups, self.contract, names)
                keys_df = repeated_keys(raw_keys, self.contract, keys).cache()
                cached.append(keys_df)
                n = keys_df.count()  # often the first full read: where a file cut short fails
                if n > MAX_REPEATED_KEYS:
                    _release(cached)
                    self.say(f"{n:,} values of ({', '.join(keys)}) occur more than once; comparing all rows by key")
                    return None
                if n:
                    header = (" (may include the header's text, read as a key)"
                              if self.contract.format.header and counts_header_lines(self.contract) else "")
                    self.say(f"{n:,} values of ({', '.join(keys)}) occur more than once{header}; their rows are "
                             "settled after the main pass")
                    out[keys] = keys_df
                else:
                    _release([keys_df])
        except BaseException:
            _release(cached)
            raise
        return out

    def _resolve_pending(self, run_root: str, schema: T.StructType, extra: Sequence[str],
                         counts: dict[str, int]) -> None:
        """Settle the rows of repeated keys: read them back, de-duplicate, apply the unique rules,
        append them as valid or rejected rows, and add what was found to ``counts``."""
        contract = self.contract
        pending_root = join(run_root, f"{VALID_COL}={PENDING}")
        self.say(f"settling {counts['rows_pending']:,} rows of repeated keys")
        self.spark.sparkContext.setJobDescription(f"{self.dataset_id}: settle rows of repeated keys")
        pending = self._read_staged(pending_root, schema)
        if counts["rows_pending"] <= SETTLE_IN_ONE_TASK:
            pending = pending.coalesce(1)  # one partition already groups every key: no shuffle
        resolved = resolve_pending(pending, contract, extra)
        observation = Observation(f"settle_{self.dataset_id}")
        observed = resolved.observe(observation, *pending_metrics(resolved, contract))
        write_parquet(drop_metric_columns(observed), run_root, [VALID_COL, *contract.partition_by], mode="append",
                      plain_encoded=contract.plain_encoded)
        for k, v in observation.get.items():
            counts[k] = counts.get(k, 0) + int(v or 0)
        self.out_storage.delete_prefix(pending_root)

    def _read_staged(self, root: str, schema: T.StructType) -> DataFrame:
        """Staged rows of one ``lake_valid`` state, read with the schema they were written with
        (no footer is read to infer it)."""
        fields = [f for f in schema.fields if f.name != VALID_COL]
        return self.spark.read.schema(T.StructType(fields)).parquet(*spark_paths([root]))

    def _extra_columns(self, files: Sequence[PlannedFile]) -> list[str]:
        """New columns admitted by an additive policy, plus those the table already gained."""
        extra: list[str] = []
        contract = self.contract
        known = set(contract.column_names) | {c.source_name for c in contract.columns}
        lineage = {n for n, _ in LINEAGE_COLUMNS}
        for name, type_name in catalog.existing_columns(self.clients.glue, contract.database, contract.table):
            if name not in known and name not in lineage and name not in extra:
                if type_name.lower() != "string":  # the columns an additive policy added are strings
                    raise catalog.SchemaConflict(
                        f"{contract.database}.{contract.table}.{name} is {type_name} in the catalog but not in "
                        f"contract '{contract.dataset_id}': a column of the table cannot be left out of its "
                        "contract (the job would write it as a string); declare it, nullable")
                extra.append(name)
        for p in files:
            for name in p.extra:
                if name not in extra:
                    extra.append(name)
        bad = [n for n in extra if not is_column_name(n)]
        if bad:
            raise ValueError(f"new columns {bad} are not usable table column names (lower-case identifiers)")
        if extra:
            self.say(f"schema evolution: extra columns {extra} kept as nullable strings")
        return extra

    def _roots(self) -> tuple[str, str]:
        c = self.contract
        return join(self.settings.curated_uri, c.database, c.table), join(self.settings.quarantine_uri, c.database, c.table)

    def _run_prefix(self, root: str, run_id: str | None = None) -> str:
        return join(root, f"{RUN_ID_COL}={run_id or self.run_id}")

    def _attempt_prefix(self, root: str) -> str:
        """Where this attempt writes: below its run's prefix, apart from any other attempt's."""
        return join(self._run_prefix(root), f"{ATTEMPT_DIR}={self.attempt}")

    def _curated_spec(self, extra: Sequence[str]) -> catalog.TableSpec:
        c = self.contract
        cols = tuple((col.name, col.type) for col in c.data_columns) + tuple((e, "string") for e in extra)
        parts = tuple((p, c.column(p).type) for p in c.partition_by) + ((RUN_ID_COL, "string"),)
        return catalog.TableSpec(c.database, c.table, self._roots()[0], cols + LINEAGE_COLUMNS, parts,
                                 c.description)

    def _quarantine_spec(self, extra: Sequence[str]) -> catalog.TableSpec:
        c = self.contract
        cols = tuple((col.name, "string") for col in c.columns) + tuple((e, "string") for e in extra)
        cols += ((RAW_RECORD_COL, "string"), (VIOLATIONS_COL, VIOLATION_HIVE_TYPE))
        return catalog.TableSpec(c.database, c.quarantine_table, self._roots()[1], cols + LINEAGE_COLUMNS,
                                 ((RUN_ID_COL, "string"),), f"rows of {c.table} rejected by the ingest")

    def _table_commit(self, zone: str, spec: catalog.TableSpec, partition_by: Sequence[str],
                      below: str = "") -> dict[str, Any]:
        """Find what this attempt wrote under its prefix in ``zone`` (``curated``, ``quarantine``): the
        partitions to register, their locations relative to the zone's root, and the bytes."""
        root = self._roots()[ZONES.index(zone)]
        prefix = f"{RUN_ID_COL}={self.run_id}/{ATTEMPT_DIR}={self.attempt}/{below}"
        partitions: dict[tuple[str, ...], str] = {}
        written = 0
        for obj in self.out_storage.list(root, prefix, etags=False):
            # what an output committer may leave beside the files (_temporary/, __magic/...), and
            # Spark's and Hive's hidden files, are no partition's data
            if not obj.key.endswith(".parquet") or any(s[:1] in ("_", ".") for s in obj.key[len(prefix):].split("/")):
                continue
            written += obj.size
            dirs = obj.key[len(prefix):].split("/")[:-1]
            values = dict(_split_kv(d) for d in dirs)
            key = tuple(values[p] for p in partition_by) + (self.run_id,)
            partitions[key] = "/".join(obj.key.split("/")[:-1]) + "/"
        self.result.bytes_written += written
        return {"zone": zone, "spec": asdict(spec),
                "partitions": [[list(k), loc] for k, loc in sorted(partitions.items())]}

    # ---------------------------------------------------------------- commit
    def _finish_commit(self, run_id: str, commit: dict[str, Any], roots: dict[str, str]) -> int:
        """Register the partitions, then the files; every step may be repeated safely. The
        tables exist already (``_ensure_tables`` runs before the commit point).

        Returns the number of new partitions of the curated table.
        """
        glue = self.clients.glue
        partitions_added = 0
        for table in commit["tables"]:
            spec, partitions = _placed(table, roots)
            added = catalog.add_partitions(glue, spec, partitions)
            if self._zone(table) == CURATED:
                partitions_added += added
        for f in commit["files"]:
            self.state.record_file(self.dataset_id, LedgerEntry(
                file_id=file_id(f["key"], f["etag"]), key=f["key"], etag=f["etag"], size=int(f["size"]),
                state=f["state"], run_id=run_id, reason=f.get("reason", ""), checksum=f.get("checksum", "")))
        return partitions_added

    def _ensure_tables(self, tables: Sequence[dict[str, Any]], roots: dict[str, str]) -> list[str]:
        """Create or evolve the run's tables (curated, quarantine); the columns the curated table
        gained (the quarantine table gains the same ones)."""
        added: list[str] = []
        for table in tables:
            spec, _ = _placed(table, roots)
            columns = catalog.ensure_table(self.clients.glue, spec)
            if self._zone(table) == CURATED:
                added += columns
        return added

    def _zone(self, table: dict[str, Any]) -> str:
        """The zone of a table of a commit manifest (an earlier build's names none: its curated
        table is the contract's)."""
        return table.get("zone") or (CURATED if table["spec"]["name"] == self.contract.table else QUARANTINE)

    def _write_manifest(self, commit: dict[str, Any], roots: dict[str, str]) -> dict[str, Any]:
        """Store the run's commit manifest (its tables, partitions and files) beside its curated
        files, and return the run-record attributes that find it: its URI, its SHA-256 and the
        zones' roots its locations are relative to (so that a recovery under other settings, or
        after the contract renamed its table, still completes it). In the record itself the
        manifest would be bounded by DynamoDB's 400 KB item: a backfill of a few thousand daily
        partitions exceeded it, failed its run, and so every later run of the dataset."""
        data = dumps(commit).encode()
        uri = join(self._attempt_prefix(roots[CURATED]), COMMIT_MANIFEST)
        self.out_storage.put_bytes(uri, data)
        return {"commit_manifest": uri, "commit_sha256": hashlib.sha256(data).hexdigest(), "commit_roots": roots}

    def _read_manifest(self, run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The commit manifest of a run that stopped in its commit, and the zones' roots."""
        if "commit_manifest" not in run and "commit" in run:  # a record of a build that kept it inline
            return json.loads(run["commit"]), {}
        uri = run.get("commit_manifest", "")
        try:
            data = self.out_storage.get_bytes(uri) if uri else b""
        except FileNotFoundError:
            data = b""
        if hashlib.sha256(data).hexdigest() != run.get("commit_sha256"):
            raise CommitBlocked(f"run {run['run_id']} of {self.dataset_id} stopped in its commit, and its commit "
                               f"manifest {uri or '(none recorded)'} is {'altered' if data else 'missing'}: the "
                               "commit cannot be completed. Restore the manifest from the bucket's versions; "
                               "the partitions it registered so far stay visible until then.")
        return json.loads(data), dict(run["commit_roots"])

    # -------------------------------------------------------------- recovery
    def _recover(self) -> None:
        """Finish commits that a dead run left half done; remove what dead runs wrote, and what
        runs marked for a later look left since (``_sweep``).

        A run in these records may still be alive: its lock was released under it (the state
        machine's task timed out, or the lease ended). Each step is therefore a write on the
        condition of the status it read. Either that run's commit point comes first, and its
        commit is completed (by it or here, counted once), or the ABANDONED write comes first,
        and its commit point is refused; never a commit of files removed here."""
        now = time.time()
        for run in self.state.runs(self.dataset_id):
            if run.get("status") in (COMMITTING, RUNNING, FAILED, ABANDONED):
                self._recover_run(run)
            if run.get("sweep_after") is not None and int(run["sweep_after"]) <= now and run["run_id"] != self.run_id:
                self._sweep(run)

    def _sweep_later(self, needed: bool) -> dict[str, Any]:
        """The mark of a run record whose prefix a later run looks at again (see ``_sweep``)."""
        return {"sweep_after": int(time.time()) + self.settings.lock_lease_seconds} if needed else {}

    def _sweep(self, run: dict[str, Any]) -> None:
        """Remove what an attempt of a finished run wrote after that run's cleanup.

        An attempt that lives on after its files were removed (another attempt of the run id
        committed; or a recovery gave its run up) and is killed before it can remove what it
        wrote since would leave files that no partition lists. Such cleanups mark the record with
        ``sweep_after``, the end of the lock's lease, after which every attempt of the run has
        ended (the lease covers a Glue run's timeout and its time waiting to start); the first
        run after that removes the leftovers once more and clears the mark."""
        rid, status = run["run_id"], run.get("status")
        if status == SUCCEEDED and run.get("attempt"):
            removed = self._clean_other_attempts(rid, run["attempt"])
        elif status in (FAILED, ABANDONED) and run.get("cleaned"):
            removed = self._clean_outputs(rid)
            if removed:
                self.say(f"removed {removed} files that run {rid} ({status}) wrote after it was cleaned")
        else:
            return
        self.state.try_update_run(self.dataset_id, rid, {"sweep_after": None}, str(status))

    def _recover_run(self, run: dict[str, Any]) -> None:
        rid, status = run["run_id"], run.get("status")
        if status == COMMITTING:
            self._complete_commit(run)
            return
        if status not in (RUNNING, FAILED, ABANDONED) or rid == self.run_id or (status != RUNNING and run.get("cleaned")):
            return
        if status == RUNNING and self.state.try_update_run(self.dataset_id, rid, {"status": ABANDONED}, RUNNING) is None:
            now = self.state.get_run(self.dataset_id, rid)  # it moved on meanwhile: committing, failed or done
            if now and now.get("status") != RUNNING:
                self._recover_run(now)
            return
        # ABANDONED or FAILED first, then clean: a death in between leaves a record the next recovery cleans.
        # 'cleaned' only on that status: not on an attempt of the run id that took the record over since.
        removed = self._clean_outputs(rid)
        # a run given up may live on and write again: a later run looks once more (see _sweep)
        self.state.try_update_run(self.dataset_id, rid, {"cleaned": True, **self._sweep_later(status == RUNNING)},
                                  ABANDONED if status == RUNNING else status)
        self.say(f"run {rid} ({status}) never committed; removed {removed} files it left")

    def _complete_commit(self, run: dict[str, Any]) -> None:
        rid = run["run_id"]
        self.say(f"completing the interrupted commit of run {rid}")
        commit, roots = self._read_manifest(run)
        added = self._ensure_tables(commit["tables"], roots)  # a commit of a build that ensured them later
        self._finish_commit(rid, commit, roots)
        others = 0
        if run.get("attempt"):  # (a run of an earlier build wrote no attempt prefix: nothing to tell apart)
            others = self._clean_other_attempts(rid, run["attempt"], [roots.get(zone, root) for zone, root
                                                                      in zip(ZONES, self._roots(), strict=True)])
        # every partition of a run is its own (the run id is a partition key), whichever
        # attempt registered it
        partitions = sum(len(t["partitions"]) for t in commit["tables"] if self._zone(t) == CURATED)
        done: dict[str, Any] = {
            "status": SUCCEEDED, "ended_at": iso(utcnow()), "recovered_by": self.run_id,
            "partitions_added": partitions, "metrics_published": True,
            "added_columns": list(dict.fromkeys([*(run.get("added_columns") or []), *added])),
            **self._sweep_later(others > 0)}
        before = self.state.try_update_run(self.dataset_id, rid, done, COMMITTING)
        if before is None:
            return  # the run itself, still alive, finished first and counted itself
        if before.get("metrics_published") is False:  # as it was at this write: no failure report counted it
            self._publish({**run, **done}, succeeded=True)

    def _clean_outputs(self, run_id: str) -> int:
        """Remove everything a run wrote, every attempt of it (a run that never committed)."""
        curated_root, quarantine_root = self._roots()
        return sum(self.out_storage.delete_prefix(self._run_prefix(r, run_id)) for r in (curated_root, quarantine_root))

    def _clean_attempt(self) -> int:
        """Remove what this attempt wrote, and nothing of another attempt of the run id."""
        return sum(self.out_storage.delete_prefix(self._attempt_prefix(r)) for r in self._roots())

    def _clean_other_attempts(self, run_id: str, committed: str, roots: Sequence[str] = ()) -> int:
        """Once attempt ``committed`` of ``run_id`` passed its commit point, remove what the other
        attempts of the run id left below its prefix in ``roots`` (default: the tables' roots):
        dead ones, or live ones whose commit point will be refused (one that writes after this
        removes what it wrote when it is refused). A step of the commit, before its record says
        SUCCEEDED: if it fails, the next run completes the commit, this step included."""
        removed = 0
        for root in roots or self._roots():
            run_root = self._run_prefix(root, run_id)
            kept = f"{ATTEMPT_DIR}={committed}"
            dirs, files = set(), []
            for key in self._run_keys(root, run_id):
                first, _, rest = key.partition("/")
                if first == kept:
                    continue
                if rest:
                    dirs.add(first)
                else:
                    files.append(first)
            for name in sorted(dirs):
                removed += self.out_storage.delete_prefix(join(run_root, name))
            for name in files:
                self.out_storage.delete(join(run_root, name))
            removed += len(files)
        if removed:
            self.say(f"removed {removed} files that other attempts of run {run_id} left")
        return removed

    def _run_keys(self, root: str, run_id: str) -> list[str]:
        """The keys of the objects below a run's prefix in a table's root, relative to that prefix."""
        prefix = f"{RUN_ID_COL}={run_id}/"
        try:
            return [obj.key[len(prefix):] for obj in self.out_storage.list(root, prefix, etags=False)]
        except FileNotFoundError:  # a local table directory that no run created (no quarantined row yet)
            return []

    def _fail(self, exc: BaseException) -> None:
        """Record the failure and remove what this attempt wrote, while its record still says
        RUNNING for it, or says ABANDONED (another run's recovery gave it up and removed what it
        had written by then). A record that moved on otherwise belongs to a commit (this
        attempt's, which the next run completes) or to another attempt of the run id, whose files
        stay: this attempt removes only its own, and reports nothing (the run is the other's)."""
        self.result.status = FAILED
        self.result.message = f"{type(exc).__name__}: {exc}"[:2000]
        self.result.seconds = round(time.monotonic() - self.started, 3)
        record = self.state.get_run(self.dataset_id, self.run_id) or {}
        status = record.get("status")
        if status in (COMMITTING, SUCCEEDED) and record.get("attempt") == self.attempt:
            self._failed_in_commit(status)
            return
        # Nothing of a run that fails before its commit becomes visible: no row is written or
        # quarantined (what it read and which rules it broke stay in the record).
        self.result.rows_written = self.result.rows_quarantined = self.result.bytes_written = 0
        report = True  # RunFailed with the counts, unless another attempt of the run id holds the record
        try:
            # FAILED first, then clean: a death in between leaves a FAILED run that _recover cleans
            failed = {**_record(self.result), "status": FAILED, "ended_at": iso(utcnow()), "error": self.result.message}
            if self.state.try_update_run(self.dataset_id, self.run_id, failed, RUNNING, attempt=self.attempt) is None:
                now = self.state.get_run(self.dataset_id, self.run_id) or {}
                report = now.get("status") == ABANDONED
                removed = self._clean_attempt()
                if report:  # what it wrote after that recovery removed the rest
                    logger.error("run %s failed (%s): another run's recovery gave it up (its lock was released "
                                 "while it ran); removed the %d files it left, nothing of it is visible",
                                 self.run_id, self.result.message, removed)
                else:
                    logger.error("run %s failed (%s) in attempt %s, but its record says %s for attempt %s: that "
                                 "attempt is the run; removed the %d files of this attempt", self.run_id,
                                 self.result.message, self.attempt, now.get("status"), now.get("attempt"), removed)
            else:
                removed = self._clean_attempt()
                # What a dead earlier attempt of the run id left is for the next run's recovery
                # (its lock keeps new attempts out) to remove: 'cleaned' only when nothing is left,
                # and on the condition that no attempt of the run id took the record over since.
                if not any(self._run_keys(r, self.run_id) for r in self._roots()):
                    self.state.try_update_run(self.dataset_id, self.run_id, {"cleaned": True}, FAILED,
                                              attempt=self.attempt)
                logger.error("run %s failed (%s); removed %d files it wrote", self.run_id, self.result.message,
                             removed)
        finally:
            if report:
                self._publish(self.result.counts(), succeeded=False)

    def _failed_in_commit(self, status: str) -> None:
        """A failure after the commit point: the rows become (or are) visible, nothing is removed.
        While the record says COMMITTING, the failure is reported (RunFailed raises the alarm) with
        the run's counts, by whichever of this run and a recovery first marks them published."""
        if status == SUCCEEDED:
            logger.error("run %s failed (%s), but its commit was completed (by it, or by another run's "
                         "recovery): its rows are visible", self.run_id, self.result.message)
            return
        logger.error("run %s failed while committing (%s); the next run completes the commit", self.run_id,
                     self.result.message)
        try:
            marked = self.state.try_update_run(self.dataset_id, self.run_id, {"metrics_published": True}, COMMITTING,
                                               unpublished=True)
        except Exception:  # unmarked, the counts are published by the run that completes the commit
            logger.exception("could not mark the metrics of run %s as published", self.run_id)
            return
        if marked is not None:  # else a recovery completed the commit meanwhile, and counted the run
            self._publish(self.result.counts(), succeeded=False)

    def _publish(self, counts: dict[str, Any], *, succeeded: bool) -> None:
        metrics.publish(self.clients.cloudwatch, self.settings.metrics_namespace, self.dataset_id, counts,
                        succeeded=succeeded)


def _release(frames: Sequence[DataFrame]) -> None:
    """Unpersist cached frames; a failure to (the JVM gone) hides no other error."""
    for frame in frames:
        with contextlib.suppress(Exception):
            frame.unpersist()


def _check_patterns(spark: SparkSession, contract: Contract) -> None:
    """Compile the contract's regex rules with Java's engine, which Spark matches with, and look
    up its text encoding among Java's, which Spark reads with; the contract check without a JVM
    uses Python's, which differ in places (``hp_roman8`` is Python's only)."""
    problems = []
    jvm = spark.sparkContext._jvm
    encoding = contract.format.encoding
    if contract.format.type != "parquet":
        try:
            supported = jvm.java.nio.charset.Charset.isSupported(encoding)  # type: ignore[union-attr]
        except (Py4JJavaError, CapturedException):  # an illegal charset name
            supported = False
        if not supported:
            problems.append(f"format.options.encoding: '{encoding}' is not an encoding Java knows, and Spark "
                            "reads text with Java's")
    problems += _datetime_format_problems(spark, contract)
    if contract.format.time_zone != "UTC":
        try:
            jvm.java.time.ZoneId.of(contract.format.time_zone)  # type: ignore[union-attr]
        except (Py4JJavaError, CapturedException) as exc:
            problems.append(f"format.time_zone: '{contract.format.time_zone}' is not a zone Java knows, and Spark "
                            f"converts with Java's: {_root_cause(exc)}")
    for i, rule in enumerate(contract.rules):
        if rule.type == "regex":
            try:
                jvm.java.util.regex.Pattern.compile(rule.pattern)  # type: ignore[union-attr]
            except (Py4JJavaError, CapturedException) as exc:
                problems.append(f"quality[{i}] ({rule.name}).pattern: Java's regex engine, which Spark uses, "
                                f"cannot compile it: {_root_cause(exc)}")
    if problems:
        raise ContractError(contract.dataset_id, problems)


def _datetime_format_problems(spark: SparkSession, contract: Contract) -> list[str]:
    """The date and timestamp patterns Spark refuses (an unknown letter, a pattern Spark 3 no
    longer parses such as ``YYYY``), found by converting a constant with each. Spark's optimizer
    folds the constant, so building the optimized plan is enough: no Spark job runs. One plan
    for all patterns, and one per pattern only when that fails."""
    formats = {i: c.format for i, c in enumerate(contract.columns) if c.format}

    def refused(patterns: Sequence[str]) -> str | None:
        try:
            plan = spark.range(1).select(*[F.try_to_timestamp(F.lit("2000-01-01"), F.lit(f)) for f in patterns])
            plan._jdf.queryExecution().optimizedPlan()
            return None
        except (Py4JJavaError, CapturedException) as exc:
            return _root_cause(exc)

    if not formats or refused(list(formats.values())) is None:
        return []
    out = []
    for i, pattern in formats.items():
        reason = refused([pattern])
        if reason:
            out.append(f"columns[{i}] ({contract.columns[i].name}).format: Spark cannot use '{pattern}': {reason}")
    return out


def find_failing(items: Sequence[_T], fails: Callable[[Sequence[_T]], str | None]) -> list[tuple[_T, str]]:
    """The items that fail on their own, with the reason ``fails`` gives for each (None: no
    failure), in their order.

    The whole set is tried first, so an error that no item causes costs one try. Then each set
    that fails is tried in halves, and the halves that pass are cleared with all their items: k
    failing items among n take at most 1 + 2k·⌈log2 n⌉ tries instead of n, which matters when a
    run holds hundreds of files and each try is a Spark job.
    """
    out: list[tuple[_T, str]] = []
    todo: list[Sequence[_T]] = [items] if items else []
    while todo:
        group = todo.pop()
        reason = fails(group)
        if reason is None:
            continue
        if len(group) == 1:
            out.append((group[0], reason))
        else:
            half = len(group) // 2
            todo += [group[half:], group[:half]]  # the first half is tried first
    return out


def _unreadable_verdict(p: PlannedFile, unreadable: dict[str, str], still_there: set[str]) -> PlannedFile:
    """A planned file after the unreadable ones were found: failed with the reason, gone (not
    recorded) when it changed since it was listed, or as it was."""
    if p.obj.key not in unreadable:
        return p
    if p.obj.key in still_there:
        return replace(p, verdict=SNIFF_FAILED, reason=unreadable[p.obj.key])
    return replace(p, verdict=GONE)


def _java_causes(exc: BaseException) -> Iterator[Any]:
    """The Java exception behind a Spark error, then its causes (at most 20). A JVM that is gone
    raises from here: callers catch it."""
    cause = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    for _ in range(20):
        if cause is None:  # Throwable.getCause() is null at the end of the chain
            return
        yield cause
        cause = cause.getCause()


def _root_cause(exc: BaseException) -> str:
    """The innermost Java exception behind a Spark error, on one line (Spark's own message names
    the failed stage and task, not what went wrong)."""
    text = str(exc)
    try:
        causes = list(_java_causes(exc))
        for cause in causes:
            if "TextParsingException" in cause.getClass().getName():
                return _parser_error(str(cause.getMessage()))
        if causes:
            text = causes[-1].toString()
    except Exception:  # the JVM is gone: keep the Python text
        pass
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return line[:300]


def _parser_error(message: str) -> str:
    """The CSV parser's error (univocity's TextParsingException) on one line: the line it stopped
    at and what went wrong, not its settings dump. An index out of bounds there means a line with
    more fields than the parser's column limit."""
    where = re.search(r"\bline=(\d+)", message)
    limit = re.search(r"Maximum number of columns=(\d+)", message)
    first = next((ln.strip() for ln in message.splitlines() if ln.strip()), "the CSV parser failed")
    if "ArrayIndexOutOfBounds" in first and limit:
        first = f"a line holds more than {int(limit.group(1)):,} fields, the CSV parser's limit"
    return (f"line {int(where.group(1)) + 1}: {first}" if where else first)[:300]


def _path_key(path: str) -> str:
    """A file's path as listed (``/tmp/a b.gz``, a relative ``lake/raw/a.gz``, ``s3://b/k``), or
    as Spark reports it once unquoted (``file:///tmp/a b.gz``), in one form for comparing them.
    Only Spark's form is URL-encoded: a listed name may hold '%41' as it is."""
    if path.startswith("file:"):
        path = "/" + path[len("file:"):].lstrip("/")
    elif "://" not in path:
        path = os.path.abspath(path)
    return path.lstrip("/")


def _caused_by_io(spark: SparkSession, exc: BaseException) -> bool:
    """Whether a Java ``IOException`` is among the causes of a Spark error (a file system that
    failed, refused or is missing; not a setting or a schema that Spark refuses)."""
    try:
        io = spark.sparkContext._jvm.java.lang.Class.forName("java.io.IOException")  # type: ignore[union-attr]
        return any(io.isInstance(cause) for cause in _java_causes(exc))
    except Exception:  # the JVM is gone
        return False


def _error_class(exc: BaseException) -> str | None:
    """Spark's error class of an exception (``PATH_NOT_FOUND``...), when it has one."""
    getter = getattr(exc, "getErrorClass", None)
    try:
        return getter() if getter else None
    except Exception:  # the JVM is gone
        return None


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _split_kv(segment: str) -> tuple[str, str]:
    k, _, v = segment.partition("=")
    return unquote(k), unquote(v)


def _placed(table: dict[str, Any], roots: dict[str, str]) -> tuple[catalog.TableSpec, list[tuple[tuple[str, ...], str]]]:
    """A table of a commit manifest and its partitions, located under the zone roots the run
    wrote to (a manifest of an earlier build holds absolute locations)."""
    spec = _spec_from(table["spec"])
    if "zone" not in table:
        return spec, [(tuple(v), loc) for v, loc in table["partitions"]]
    root = roots[table["zone"]]
    return replace(spec, location=root), [(tuple(v), join(root, loc) + "/") for v, loc in table["partitions"]]


def _spec_from(d: dict[str, Any]) -> catalog.TableSpec:
    return catalog.TableSpec(d["database"], d["name"], d["location"],
                             tuple(tuple(c) for c in d["columns"]),
                             tuple(tuple(c) for c in d["partition_keys"]),
                             d.get("description", ""))


#: The longest reason kept for a file (in the ledger, the run record and the commit manifest).
MAX_REASON = 500
#: At most this many UTF-8 bytes of ``failed_files`` (keys and reasons) go into a run record,
#: whose DynamoDB item takes at most 400 KB; the others are counted in ``failed_files_unlisted``.
#: Every failed file has its reason in the ledger.
MAX_LISTED_FAILURES_BYTES = 100_000


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def _record(result: RunResult) -> dict[str, Any]:
    """Run-record attributes of a result (maps and lists as DynamoDB maps and lists)."""
    out = result.counts()
    out.pop("status", None)
    listed: dict[str, str] = {}
    size = 0
    for key, reason in result.failed_files.items():
        size += len(key.encode()) + len(reason.encode())
        if size > MAX_LISTED_FAILURES_BYTES:
            break
        listed[key] = reason
    out["failed_files"] = listed
    out["failed_files_unlisted"] = len(result.failed_files) - len(listed)
    return out
