"""Job state in DynamoDB: the file ledger, the run records and the per-dataset lock."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

logger = logging.getLogger(__name__)

# Ledger states of a source file.
INGESTED, EMPTY, FAILED_FILE = "INGESTED", "EMPTY", "FAILED"
#: A delivery whose bytes were ingested before under the same key (another ETag): not read again.
SAME_CONTENT = "SAME_CONTENT"
# Run states.
RUNNING, COMMITTING, SUCCEEDED, FAILED, ABANDONED = "RUNNING", "COMMITTING", "SUCCEEDED", "FAILED", "ABANDONED"
LOCK_ID = "#lock"

_ser, _de = TypeSerializer(), TypeDeserializer()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Python values to DynamoDB attribute values (floats become Decimals, Nones are left out)."""
    def fix(v: Any) -> Any:
        if isinstance(v, float):
            return Decimal(str(v))
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items() if x is not None}
        if isinstance(v, list | tuple):
            return [fix(x) for x in v]
        return v
    return {k: _ser.serialize(fix(v)) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    def fix(v: Any) -> Any:
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v
    return {k: fix(_de.deserialize(v)) for k, v in item.items()}


class DatasetLocked(RuntimeError):
    """Another live run of the same dataset holds the lock."""


@dataclass(frozen=True)
class LedgerEntry:
    file_id: str
    key: str
    etag: str
    size: int
    state: str
    run_id: str
    reason: str = ""
    checksum: str = ""  # the content id (Storage.content_id), "" when the store had none


#: DynamoDB's limit on the value of a sort key, in UTF-8 bytes (an S3 key alone may have 1024).
MAX_FILE_ID_BYTES = 1024


def file_id(key: str, etag: str) -> str:
    """Ledger key of one delivery: the object key plus its ETag, so a changed file is new. When
    the two are too long for a DynamoDB sort key, the object key is replaced by its SHA-256 (the
    ledger item keeps the key in full). The claim Lambda computes the same id."""
    fid = f"{key}#{etag}"
    if len(fid.encode()) <= MAX_FILE_ID_BYTES:
        return fid
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}#{etag}"


class StateStore:
    """The ledger and runs tables, through an injectable DynamoDB client.

    Parameters
    ----------
    dynamodb
        A boto3 DynamoDB client (moto locally).
    ledger_table, runs_table
        Table names; both have the hash key ``dataset_id`` and the range keys ``file_id`` and
        ``run_id``.
    """

    def __init__(self, dynamodb: Any, ledger_table: str, runs_table: str) -> None:
        self.ddb = dynamodb
        self.ledger_table = ledger_table
        self.runs_table = runs_table

    # ---------------------------------------------------------------- ledger
    def ledger(self, dataset_id: str) -> dict[str, LedgerEntry]:
        """Every file recorded for a dataset, by file id."""
        out: dict[str, LedgerEntry] = {}
        for item in self._query(self.ledger_table, dataset_id):
            out[item["file_id"]] = LedgerEntry(
                file_id=item["file_id"], key=item.get("key", ""), etag=item.get("etag", ""),
                size=int(item.get("size", 0)), state=item["state"], run_id=item.get("run_id", ""),
                reason=item.get("reason", ""), checksum=item.get("checksum", ""),
            )
        return out

    def record_file(self, dataset_id: str, entry: LedgerEntry) -> bool:
        """Write a ledger entry unless another run recorded the file first; True when written."""
        try:
            self.ddb.put_item(
                TableName=self.ledger_table,
                Item=to_item({
                    "dataset_id": dataset_id, "file_id": entry.file_id, "key": entry.key, "etag": entry.etag,
                    "size": entry.size, "state": entry.state, "run_id": entry.run_id,
                    "reason": entry.reason or None, "checksum": entry.checksum or None, "recorded_at": iso(utcnow()),
                }),
                ConditionExpression="attribute_not_exists(file_id) OR run_id = :run",
                ExpressionAttributeValues={":run": {"S": entry.run_id}},
            )
            return True
        except self.ddb.exceptions.ConditionalCheckFailedException:
            logger.warning("ledger: %s was already recorded by another run", entry.file_id)
            return False

    # ------------------------------------------------------------------ runs
    def get_run(self, dataset_id: str, run_id: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(TableName=self.runs_table, Key=to_item({"dataset_id": dataset_id, "run_id": run_id}),
                                 ConsistentRead=True)
        return from_item(resp["Item"]) if "Item" in resp else None

    def runs(self, dataset_id: str, statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Run records of a dataset (the lock item excluded), optionally only some statuses."""
        items = [i for i in self._query(self.runs_table, dataset_id) if i["run_id"] != LOCK_ID]
        return [i for i in items if statuses is None or i.get("status") in statuses]

    def start_run(self, dataset_id: str, run_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
        """Create the run record; a retry of a run that never committed may take it over. Returns
        the record it replaced (empty when there was none)."""
        answer = self.ddb.put_item(
            TableName=self.runs_table,
            Item=to_item({"dataset_id": dataset_id, "run_id": run_id, "status": RUNNING,
                          "started_at": iso(utcnow()), **attrs}),
            # A record the orchestration wrote for a run that never started has no status yet.
            ConditionExpression="attribute_not_exists(run_id) OR attribute_not_exists(#s) "
                                "OR #s IN (:running, :failed, :abandoned)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_item({":running": RUNNING, ":failed": FAILED, ":abandoned": ABANDONED}),
            ReturnValues="ALL_OLD",
        )
        return from_item(answer.get("Attributes", {}))

    def update_run(self, dataset_id: str, run_id: str, values: dict[str, Any],
                   expect_status: str | None = None, *, unpublished: bool = False,
                   attempt: str | None = None) -> dict[str, Any]:
        """Set (or, for None values, remove) attributes of a run record, optionally only if it
        still has ``expect_status``; with ``unpublished``, only if its ``metrics_published`` is
        false (the one write that earns the right to publish a run's counts); with ``attempt``,
        only if the record is still that attempt's (no other attempt of the run id took it over).
        Returns the previous values of the attributes it changed."""
        names = {f"#a{i}": k for i, k in enumerate(values)}
        sets = {f"#a{i}": f":v{i}" for i, v in enumerate(values.values()) if v is not None}
        removes = [f"#a{i}" for i, v in enumerate(values.values()) if v is None]
        vals = to_item({sets[f"#a{i}"]: v for i, v in enumerate(values.values()) if v is not None})
        expr = "SET " + ", ".join(f"{k} = {v}" for k, v in sets.items()) if sets else ""
        if removes:
            expr += " REMOVE " + ", ".join(removes)
        kwargs: dict[str, Any] = {}
        conditions = []
        if expect_status is not None:
            names["#st"] = "status"
            vals[":expect"] = {"S": expect_status}
            conditions.append("#st = :expect")
        if unpublished:
            names["#mp"] = "metrics_published"
            vals[":unpublished"] = {"BOOL": False}
            conditions.append("#mp = :unpublished")
        if attempt is not None:
            names["#at"] = "attempt"
            vals[":attempt"] = {"S": attempt}
            conditions.append("#at = :attempt")
        if conditions:
            kwargs["ConditionExpression"] = " AND ".join(conditions)
        if vals:
            kwargs["ExpressionAttributeValues"] = vals
        answer = self.ddb.update_item(
            TableName=self.runs_table, Key=to_item({"dataset_id": dataset_id, "run_id": run_id}),
            UpdateExpression=expr.strip(), ExpressionAttributeNames=names, ReturnValues="UPDATED_OLD", **kwargs,
        )
        return from_item(answer.get("Attributes", {}))

    def try_update_run(self, dataset_id: str, run_id: str, values: dict[str, Any], expect_status: str, *,
                       unpublished: bool = False, attempt: str | None = None) -> dict[str, Any] | None:
        """``update_run`` on its conditions, or None when they refused the write (the record
        moved on: another run, or another attempt of the run id, wrote it first)."""
        try:
            return self.update_run(dataset_id, run_id, values, expect_status, unpublished=unpublished, attempt=attempt)
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None

    # ------------------------------------------------------------------ lock
    @contextmanager
    def dataset_lock(self, dataset_id: str, holder: str, lease_seconds: int, attempt: str = "") -> Iterator[None]:
        """Hold the dataset's lock for the body: one live run per dataset.

        The lock is an item in the runs table with an expiry. A run that dies without releasing
        it (killed process, lost worker) blocks the dataset until the lease ends, which should
        match the Glue job timeout; a run that fails with an exception releases it at once.
        The holder (a run id) may take its own lock again, so that a retry of a dead attempt
        need not wait for the lease; the lock then records the new ``attempt``, and only the
        attempt that took it last releases it (an earlier attempt still alive would otherwise
        release it under the later one).
        """
        now = time.time()
        try:
            self.ddb.put_item(
                TableName=self.runs_table,
                Item=to_item({"dataset_id": dataset_id, "run_id": LOCK_ID, "holder": holder, "attempt": attempt or None,
                              "acquired_at": iso(utcnow()), "expires_at": int(now + lease_seconds)}),
                ConditionExpression="attribute_not_exists(run_id) OR expires_at < :now OR holder = :me",
                ExpressionAttributeValues=to_item({":now": int(now), ":me": holder}),
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            current = self.get_run(dataset_id, LOCK_ID) or {}
            raise DatasetLocked(
                f"dataset '{dataset_id}' is locked by run {current.get('holder')} until "
                f"{dt.datetime.fromtimestamp(int(current.get('expires_at', 0)), dt.UTC):%Y-%m-%d %H:%M:%SZ}"
            ) from None
        try:
            yield
        finally:
            try:
                mine = "holder = :me" + (" AND (attribute_not_exists(attempt) OR attempt = :attempt)" if attempt else "")
                self.ddb.delete_item(
                    TableName=self.runs_table, Key=to_item({"dataset_id": dataset_id, "run_id": LOCK_ID}),
                    ConditionExpression=mine, ExpressionAttributeValues=to_item({":me": holder, ":attempt": attempt or None}),
                )
            except self.ddb.exceptions.ConditionalCheckFailedException:
                logger.warning("lock of %s was taken over before release", dataset_id)
            except Exception as exc:
                # Raised here, a throttled or refused release would replace the run's error, or
                # fail a run that succeeded. The lease frees the dataset; on AWS the state
                # machine's release step deletes the lock of its run id too.
                logger.warning("lock of %s not released (%s: %s); it frees itself when its lease ends, at most %d s "
                               "after it was taken",
                               dataset_id, type(exc).__name__, exc, lease_seconds)

    def holds_lock(self, dataset_id: str, holder: str) -> bool:
        """Whether ``holder`` holds the dataset's lock now (a strongly consistent read)."""
        lock = self.get_run(dataset_id, LOCK_ID) or {}
        return lock.get("holder") == holder and int(lock.get("expires_at", 0)) > time.time()

    # ------------------------------------------------------------- internals
    def _query(self, table: str, dataset_id: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": table, "KeyConditionExpression": "dataset_id = :d",
            "ExpressionAttributeValues": {":d": {"S": dataset_id}}, "ConsistentRead": True,
        }
        while True:
            resp = self.ddb.query(**kwargs)
            for item in resp.get("Items", []):
                yield from_item(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def dumps(value: Any) -> str:
    """Compact JSON for values kept as one string attribute (commit manifests)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
