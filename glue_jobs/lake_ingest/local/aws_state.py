"""Keep the emulated account between runs: save and restore DynamoDB items and the Glue catalog.

moto holds its state in memory only; the local demo saves it as JSON next to the lake so that a
second run sees the ledger, the run records and the catalog of the first, as AWS would.

The state file lives in the lake's root directory, and every path under that directory (the
catalog's table and partition locations, paths inside text attributes) is saved relative to it:
a lake moved or copied as a whole keeps a catalog that points at its own files, not at the
original's. Commit manifests lie in the lake itself, with locations relative to its zones.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from .._aws import AwsClients
from .._state import LOCK_ID

logger = logging.getLogger(__name__)

_TABLE_INPUT_KEYS = ("Name", "Description", "Owner", "Retention", "StorageDescriptor", "PartitionKeys",
                     "TableType", "Parameters")
_PARTITION_INPUT_KEYS = ("Values", "StorageDescriptor", "Parameters")
#: Stand for the lake's root directory in a saved state: as it is, and as JSON text writes it
#: inside a text attribute (a root with non-ASCII characters or quotes differs).
LAKE_ROOT = "{lake_root}"
LAKE_ROOT_IN_JSON = "{lake_root_json}"


def _swap_prefix(value: Any, old: str, new: str) -> Any:
    """``value`` with every path under the directory ``old`` rewritten under ``new``, in nested
    lists and dicts, and inside text too (an attribute may hold JSON text). A path
    counts where ``old/`` starts a string or follows a quote, a space, ``:`` or ``=``, so that
    ``/x/tmp/lake/`` is not taken for ``/tmp/lake/``."""
    if isinstance(value, dict):
        return {k: _swap_prefix(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap_prefix(v, old, new) for v in value]
    if isinstance(value, str):
        if value == old:
            return new
        return re.sub(r"(?:(?<=^)|(?<=[\s\"':=])|(?<=file://))" + re.escape(old + "/"), lambda _: new + "/", value)
    return value


def _root_of(path: Path) -> str:
    return str(path.absolute().parent)


def _in_json(text: str) -> str:
    """``text`` as it appears inside a JSON string (``json.dumps`` escapes non-ASCII and quotes)."""
    return json.dumps(text)[1:-1]


def _relative(state: Any, root: str) -> Any:
    if _in_json(root) != root:
        state = _swap_prefix(state, _in_json(root), LAKE_ROOT_IN_JSON)
    return _swap_prefix(state, root, LAKE_ROOT)


def _absolute(state: Any, root: str) -> Any:
    return _swap_prefix(_swap_prefix(state, LAKE_ROOT_IN_JSON, _in_json(root)), LAKE_ROOT, root)


def _pages(client: Any, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(op).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out


def save_state(clients: AwsClients, path: str | Path, tables: list[str]) -> None:
    """Write every item of ``tables`` and every Glue database, table and partition to ``path``.

    Dataset locks are left out: no run outlives the process that saves, and a lock saved by a
    run stopped mid-way (Ctrl-C during an execution) would block its dataset for the lease."""
    ddb, glue = clients.dynamodb, clients.glue
    state: dict[str, Any] = {"dynamodb": {}, "glue": []}
    for table in tables:
        state["dynamodb"][table] = [item for item in _pages(ddb, "scan", "Items", TableName=table)
                                    if item.get("run_id", {}).get("S") != LOCK_ID]
    for db in _pages(glue, "get_databases", "DatabaseList"):
        entry: dict[str, Any] = {"Name": db["Name"], "Description": db.get("Description", ""), "tables": []}
        for t in _pages(glue, "get_tables", "TableList", DatabaseName=db["Name"]):
            parts = _pages(glue, "get_partitions", "Partitions", DatabaseName=db["Name"], TableName=t["Name"])
            entry["tables"].append({
                "input": {k: t[k] for k in _TABLE_INPUT_KEYS if k in t},
                "partitions": [{k: p[k] for k in _PARTITION_INPUT_KEYS if k in p} for p in parts],
            })
        state["glue"].append(entry)
    target = Path(path)
    state = _relative(state, _root_of(target))
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(state, default=str))
    partial.replace(target)  # atomic: a run stopped while saving leaves the previous state whole
    logger.info("saved the emulated account to %s", path)


class StateError(ValueError):
    """A saved state that cannot be restored (damaged or not the demo's)."""


def load_state(clients: AwsClients, path: str | Path) -> bool:
    """Restore a saved state into an emulated account that has the tables already; False if none."""
    p = Path(path)
    if not p.exists():
        return False
    try:
        state = json.loads(p.read_text())
        if not isinstance(state, dict) or not {"dynamodb", "glue"} <= set(state):
            raise ValueError("not the demo's saved state")
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise StateError(f"{p} is not a saved state ({exc}); start over with --fresh (make demo-fresh)") from None
    ddb, glue = clients.dynamodb, clients.glue
    state = _absolute(state, _root_of(p))
    for table, items in state["dynamodb"].items():
        for i in range(0, len(items), 25):
            _write_all(ddb, {table: [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]})
    for db in state["glue"]:
        try:
            glue.create_database(DatabaseInput={"Name": db["Name"], "Description": db["Description"]})
        except glue.exceptions.AlreadyExistsException:
            pass
        for t in db["tables"]:
            try:
                glue.create_table(DatabaseName=db["Name"], TableInput=t["input"])
            except glue.exceptions.AlreadyExistsException:
                glue.update_table(DatabaseName=db["Name"], TableInput=t["input"])
            parts = t["partitions"]
            for i in range(0, len(parts), 100):
                answer = glue.batch_create_partition(DatabaseName=db["Name"], TableName=t["input"]["Name"],
                                                     PartitionInputList=parts[i : i + 100])
                errors = [e for e in answer.get("Errors", [])
                          if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
                if errors:  # a partition lost here would hide committed rows from every query
                    raise StateError(f"{p}: the catalog refused {len(errors)} partitions of "
                                     f"{db['Name']}.{t['input']['Name']}, first {errors[0]}")
    logger.info("restored the emulated account from %s", p)
    return True


def _write_all(ddb: Any, requests: dict[str, list[dict[str, Any]]], attempts: int = 8) -> None:
    """``batch_write_item`` until DynamoDB took every item (it hands back what it did not take as
    ``UnprocessedItems``): a ledger item lost here would let its file be ingested twice."""
    for attempt in range(attempts):
        requests = ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        if not requests:
            return
        time.sleep(min(1.0, 0.05 * 2**attempt))
    left = sum(len(r) for r in requests.values())
    raise StateError(f"DynamoDB did not take {left} items of the saved state after {attempts} tries")
