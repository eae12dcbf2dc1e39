"""Lambda: decide which datasets an ingest execution runs, from the contracts in DynamoDB.

A scheduled execution runs every dataset with a contract. An execution started by an S3
"Object Created" event runs only the datasets whose contract source (bucket, prefix, file-name
pattern) matches the new object. Disabled datasets are listed too: the state machine reads each
contract and skips them visibly. Standard library and boto3 only (the Lambda runtime has both).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from typing import Any
from urllib.parse import unquote_plus

import boto3

logger = logging.getLogger("plan_ingest")  # the Lambda runtime's root handler prints it
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

RAW_ZONE = "raw"  # a contract's source.bucket naming the raw zone rather than a bucket


def source_matches(source: dict[str, Any], bucket: str, key: str, raw_bucket: str) -> bool:
    """True when an object is one of the files a contract's source describes."""
    wanted = raw_bucket if source.get("bucket", RAW_ZONE) == RAW_ZONE else source.get("bucket")
    prefix = source.get("prefix", "")
    name = key.rsplit("/", 1)[-1]
    return (bucket == wanted and key.startswith(prefix) and bool(name)
            and fnmatch.fnmatchcase(name, source.get("pattern", "")))


def key_forms(key: str) -> list[str]:
    """The key as an event gives it, and URL-decoded when that differs. S3's notifications to
    SQS, SNS and Lambda URL-encode keys ('red flower.jpg' arrives as 'red+flower.jpg'); whether
    EventBridge does is not documented, so both readings are tried. The decoded reading of a key
    that holds a literal '+' or '%' names another object, which at worst plans a run that finds
    nothing new."""
    decoded = unquote_plus(key)
    return [key] if decoded == key else [key, decoded]


def _contracts(table: str, dynamodb: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "dataset_id, document"}
    while True:
        page = dynamodb.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    out = []
    for item in items:
        try:
            document = json.loads(item["document"]["S"])
        except (KeyError, ValueError):
            document = {}
        # An unreadable contract (not JSON, not an object, a source that is no object) still runs
        # on schedule, so that the job reports it; it matches no object.
        source = document.get("source") if isinstance(document, dict) else None
        out.append({"dataset_id": item["dataset_id"]["S"], "source": source if isinstance(source, dict) else {}})
    return sorted(out, key=lambda c: c["dataset_id"])


class BadTrigger(ValueError):
    """An execution input the planner cannot act on; the execution fails with this message."""


def _checked(event: Any, known: list[str]) -> dict[str, Any]:
    """The trigger event, refused when it is not one the state machine's triggers send (or a
    manual start could mean): the execution fails with the reason rather than planning nothing,
    or everything, by accident."""
    if event is None:
        return {}
    if not isinstance(event, dict):
        raise BadTrigger(f"the execution input must be a JSON object, got {type(event).__name__}")
    if event.get("trigger") == "s3" or "object_key" in event:
        key = event.get("object_key")
        if not isinstance(key, str) or not key:
            raise BadTrigger(f"an S3 trigger needs the object's key as a non-empty string, got {key!r}")
        if not isinstance(event.get("bucket", ""), str):
            raise BadTrigger("bucket must be a string")
        if not isinstance(event.get("etag", ""), str):
            raise BadTrigger("etag must be a string")
    if "dataset_ids" in event:
        ids = event["dataset_ids"]
        if not isinstance(ids, list) or not ids or not all(isinstance(d, str) for d in ids):
            raise BadTrigger(f"dataset_ids must be a non-empty list of dataset ids, got {ids!r}")
        unknown = sorted(set(ids) - set(known))
        if unknown:
            raise BadTrigger(f"dataset_ids names datasets without a contract: {', '.join(unknown)}")
    return event


def plan(event: Any, table: str, raw_bucket: str, dynamodb: Any) -> dict[str, Any]:
    """The datasets to run for one trigger event (see the module docstring)."""
    contracts = _contracts(table, dynamodb)
    event = _checked(event, [c["dataset_id"] for c in contracts])
    key = event.get("object_key")
    if key:
        bucket = event.get("bucket", raw_bucket)
        ids = [c["dataset_id"] for c in contracts
               if any(source_matches(c["source"], bucket, k, raw_bucket) for k in key_forms(key))]
        logger.info("object s3://%s/%s -> %s", bucket, key, ids or "no dataset")
    else:
        ids = [c["dataset_id"] for c in contracts]
        logger.info("%s trigger -> %s", event.get("trigger", "manual"), ids)
    if "dataset_ids" in event:
        ids = [d for d in ids if d in set(event["dataset_ids"])]
    # The object's ETag lets each dataset's branch skip a file that an earlier run has read.
    return {"datasets": ids, "trigger": event.get("trigger", "manual"), "object_key": key,
            "etag": (event.get("etag") or None) if key else None}


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    return plan(event, os.environ["CONTRACTS_TABLE"], os.environ["RAW_BUCKET"],
                boto3.client("dynamodb"))
