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
            document = {}  # an unreadable contract still runs, so that the job reports it
        out.append({"dataset_id": item["dataset_id"]["S"], "source": document.get("source", {})})
    return sorted(out, key=lambda c: c["dataset_id"])


def plan(event: dict[str, Any], table: str, raw_bucket: str, dynamodb: Any) -> dict[str, Any]:
    """The datasets to run for one trigger event (see the module docstring)."""
    contracts = _contracts(table, dynamodb)
    key = event.get("object_key")
    if key:
        bucket = event.get("bucket", raw_bucket)
        ids = [c["dataset_id"] for c in contracts if source_matches(c["source"], bucket, key, raw_bucket)]
        logger.info("object s3://%s/%s -> %s", bucket, key, ids or "no dataset")
    else:
        ids = [c["dataset_id"] for c in contracts]
        logger.info("%s trigger -> %s", event.get("trigger", "manual"), ids)
    if event.get("dataset_ids"):
        ids = [d for d in ids if d in set(event["dataset_ids"])]
    return {"datasets": ids, "trigger": event.get("trigger", "manual"), "object_key": key}


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return plan(event or {}, os.environ["CONTRACTS_TABLE"], os.environ["RAW_BUCKET"],
                boto3.client("dynamodb"))
