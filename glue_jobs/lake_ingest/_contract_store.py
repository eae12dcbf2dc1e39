"""Contracts in DynamoDB: loaded there from the YAML files in git, read from there by the job."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._contract import Contract, ContractError

logger = logging.getLogger(__name__)


class ContractNotFound(ContractError):
    """No contract item exists for the dataset."""

    def __init__(self, dataset_id: str, table: str) -> None:
        ValueError.__init__(self, f"no contract for dataset '{dataset_id}' in DynamoDB table '{table}'")
        self.dataset_id = dataset_id
        self.problems = [f"missing from table {table}"]


def contract_item(doc: dict[str, Any]) -> dict[str, Any]:
    """The DynamoDB item of one contract document (validated first).

    The whole contract travels as one JSON string attribute ``document``; ``dataset_id``,
    ``enabled`` and ``version`` are top-level attributes so that the orchestration can read
    them without parsing. The deployment writes the very same shape from the same YAML files.
    """
    contract = Contract.from_dict(doc)
    return {
        "dataset_id": {"S": contract.dataset_id},
        "enabled": {"BOOL": contract.enabled},
        "version": {"N": str(contract.version)},
        "document": {"S": json.dumps(doc, sort_keys=True, separators=(",", ":"))},
    }


def load_contract_files(directory: str | Path) -> list[dict[str, Any]]:
    """Read and validate every ``*.yaml`` contract in a directory, sorted by file name."""
    import yaml  # only the loader needs PyYAML; the job reads JSON from DynamoDB

    docs = []
    for path in sorted(Path(directory).glob("*.yaml")):
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        try:
            contract = Contract.from_dict(doc)
        except ContractError as exc:
            raise ContractError(exc.dataset_id, [f"{path.name}: {p}" for p in exc.problems]) from None
        if path.stem != contract.dataset_id:
            raise ContractError(contract.dataset_id, [f"{path.name}: file name must be {contract.dataset_id}.yaml"])
        docs.append(doc)
    return docs


class ContractStore:
    """Reads contracts from the DynamoDB contracts table (hash key ``dataset_id``)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table

    def put(self, docs: Iterable[dict[str, Any]]) -> int:
        count = 0
        for doc in docs:
            self.ddb.put_item(TableName=self.table, Item=contract_item(doc))
            count += 1
        logger.info("loaded %d contracts into %s", count, self.table)
        return count

    def get(self, dataset_id: str) -> Contract:
        """The validated contract of a dataset; ContractError names the dataset when it is
        missing, unreadable or invalid."""
        resp = self.ddb.get_item(TableName=self.table, Key={"dataset_id": {"S": dataset_id}}, ConsistentRead=True)
        if "Item" not in resp:
            raise ContractNotFound(dataset_id, self.table)
        raw = resp["Item"].get("document", {}).get("S")
        try:
            doc = json.loads(raw) if raw else None
        except json.JSONDecodeError as exc:
            raise ContractError(dataset_id, [f"document: not valid JSON ({exc})"]) from None
        if not isinstance(doc, dict):
            raise ContractError(dataset_id, ["document: attribute missing or not a JSON object"])
        contract = Contract.from_dict(doc)
        if contract.dataset_id != dataset_id:
            raise ContractError(dataset_id, [f"dataset_id: the item holds the contract of '{contract.dataset_id}'"])
        return contract

    def dataset_ids(self, enabled_only: bool = True) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ProjectionExpression": "dataset_id, enabled"}
        while True:
            resp = self.ddb.scan(**kwargs)
            for item in resp.get("Items", []):
                if not enabled_only or item.get("enabled", {}).get("BOOL", True):
                    ids.append(item["dataset_id"]["S"])
            if "LastEvaluatedKey" not in resp:
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
