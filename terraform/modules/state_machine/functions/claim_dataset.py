"""Lambda: before a Glue run is started for a dataset, decide whether it should start now.

A burst of files starts one execution per file. Without this step each would start a Glue run,
and every run that finds the dataset locked would end at once, still billed Glue's one-minute
minimum. Here each execution, for its dataset, returns one action:

- ``skip``: the file that triggered the execution is in the ledger already (an earlier run of
  the burst read it), so there is nothing for this execution to do;
- ``run``: the dataset's lock was free and is now held in the execution's name (the run id), so
  this execution starts the Glue run; the job takes the same lock again under the same holder,
  which the lock allows, and the state machine releases it when the run ends;
- ``wait``: another run holds the lock; the state machine waits and asks again.

So a burst costs one Glue run while another runs, then one for every file that arrived during
it, instead of one per file. Scheduled executions have no file and only claim the lock. The
lock item and the ledger key are those of the ingest job (``lake_ingest._state``); a test
checks that the job accepts a lock claimed here and refuses it to any other run.
Standard library and boto3 only (the Lambda runtime has both).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from typing import Any
from urllib.parse import unquote_plus

import boto3

logger = logging.getLogger("claim_dataset")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

LOCK_ID = "#lock"  # the run id of a dataset's lock item in the runs table (as the job writes it)


#: DynamoDB's limit on the value of a sort key, in UTF-8 bytes.
MAX_FILE_ID_BYTES = 1024


def file_id(key: str, etag: str) -> str:
    """The ledger key of one delivery, as the job writes it (``lake_ingest._state.file_id``)."""
    fid = f"{key}#{etag}"
    if len(fid.encode()) <= MAX_FILE_ID_BYTES:
        return fid
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}#{etag}"


class BadClaim(ValueError):
    """An input the function cannot act on; the execution records the failure."""


def _text(event: dict[str, Any], name: str, required: bool) -> str | None:
    value = event.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadClaim(f"{name} must be a non-empty string, got {value!r}")
    return value


def claim(event: Any, ledger_table: str, runs_table: str, lease_seconds: int, dynamodb: Any,
          now: float | None = None) -> dict[str, Any]:
    """The action for one dataset of one execution (see the module docstring)."""
    if not isinstance(event, dict):
        raise BadClaim(f"the input must be a JSON object, got {type(event).__name__}")
    dataset_id = _text(event, "dataset_id", True)
    run_id = _text(event, "run_id", True)
    key, etag = _text(event, "object_key", False), _text(event, "etag", False)
    if key and etag:
        # The job lists the raw zone from the bucket's root, so its ledger key is the object key;
        # the event's key is tried as given and URL-decoded (as the planner does, see there).
        for form in dict.fromkeys([key, unquote_plus(key)]):
            found = dynamodb.get_item(
                TableName=ledger_table, ConsistentRead=True, ProjectionExpression="#s, run_id",
                ExpressionAttributeNames={"#s": "state"},
                Key={"dataset_id": {"S": dataset_id}, "file_id": {"S": file_id(form, etag)}},
            ).get("Item")
            if found:
                reason = (f"{form} is already recorded {found.get('state', {}).get('S', '')} "
                          f"by run {found.get('run_id', {}).get('S', '')}")
                logger.info("%s: skip, %s", dataset_id, reason)
                return {"action": "skip", "reason": reason}
    now = time.time() if now is None else now
    try:
        dynamodb.put_item(
            TableName=runs_table,
            Item={"dataset_id": {"S": dataset_id}, "run_id": {"S": LOCK_ID}, "holder": {"S": run_id},
                  "acquired_at": {"S": dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z")},
                  "expires_at": {"N": str(int(now + lease_seconds))}},
            ConditionExpression="attribute_not_exists(run_id) OR expires_at < :now OR holder = :me",
            ExpressionAttributeValues={":now": {"N": str(int(now))}, ":me": {"S": run_id}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        held = dynamodb.get_item(TableName=runs_table, ConsistentRead=True,
                                 Key={"dataset_id": {"S": dataset_id}, "run_id": {"S": LOCK_ID}}).get("Item", {})
        reason = f"locked by run {held.get('holder', {}).get('S', '?')}"
        logger.info("%s: wait, %s", dataset_id, reason)
        return {"action": "wait", "reason": reason}
    logger.info("%s: run, lock held for %s", dataset_id, run_id)
    return {"action": "run", "reason": f"lock held for run {run_id}"}


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    return claim(event, os.environ["LEDGER_TABLE"], os.environ["RUNS_TABLE"],
                 int(os.environ["LEASE_SECONDS"]), boto3.client("dynamodb"))
