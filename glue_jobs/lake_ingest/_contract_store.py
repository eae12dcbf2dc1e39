"""Contracts in DynamoDB: loaded there from the YAML files in git, read from there by the job."""

from __future__ import annotations

import json
import logging
import re
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


#: The largest contract, as compact JSON: a DynamoDB item holds at most 400 KB, and the
#: deployment's ``jsonencode`` writes some characters longer (``<``, ``>`` and ``&`` as ``\u003c``...).
MAX_CONTRACT_BYTES = 300_000


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
        "document": {"S": _document(doc, contract.dataset_id)},
    }


def _document(doc: dict[str, Any], dataset_id: str) -> str:
    """A contract as the compact JSON its item stores; ContractError when it is too large."""
    try:
        document = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    except TypeError as exc:  # a value YAML read as a date or time, in a field no check reads as one
        raise ContractError(dataset_id, [f"holds a value that is not text, a number, true/false or a list ({exc}); "
                                         "YAML reads an unquoted 2026-01-01 as a date: quote it"]) from None
    size = len(document.encode())
    if size > MAX_CONTRACT_BYTES:
        raise ContractError(dataset_id, [
            f"the contract takes {size:,} bytes as JSON, more than {MAX_CONTRACT_BYTES:,} (a DynamoDB item holds "
            "400 KB): shorten its descriptions or long value lists (a long allowed_values list is better "
            "checked against a reference table after the ingest)"])
    return document


def load_contract_files(directory: str | Path) -> list[dict[str, Any]]:
    """Read and validate every ``*.yaml`` contract in a directory, sorted by file name.

    Besides each contract's own checks, the files are refused when a key appears twice in a
    mapping (YAML keeps the last one silently), when a value is written so that YAML parsers
    read it differently (see ``yaml_problems``), and when two contracts write one table.
    """
    paths = sorted(Path(directory).glob("*.yaml"))
    if not paths:
        what = "holds no *.yaml contract" if Path(directory).is_dir() else "is not a directory"
        raise ContractError("*", [f"{directory} {what}"])
    # the deployment loads *.yaml only (Terraform's fileset): a contract named otherwise would be left out
    others = sorted(p.name for p in Path(directory).iterdir()
                    if p.is_file() and p.suffix != ".yaml" and not p.name.startswith(".") and p.name != "README.md")
    if others:
        raise ContractError("*", [f"{directory} holds {', '.join(others)}: contracts are *.yaml files, and the "
                                  "deployment loads no other; rename or remove them"])
    docs = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ContractError(path.stem, [f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
        problems = [f"{path.name}: {p}" for p in yaml_problems(text)]
        if problems and problems[0].startswith(f"{path.name}: not valid YAML"):
            raise ContractError(path.stem, problems)
        doc = _yaml().safe_load(text)
        try:  # every problem at once: the YAML ones and the contract's (its size among them)
            contract = Contract.from_dict(doc)
            _document(doc, contract.dataset_id)
        except ContractError as exc:
            raise ContractError(exc.dataset_id, problems + [f"{path.name}: {p}" for p in exc.problems]) from None
        if problems:
            raise ContractError(contract.dataset_id, problems)
        if path.stem != contract.dataset_id:
            raise ContractError(contract.dataset_id, [f"{path.name}: file name must be {contract.dataset_id}.yaml"])
        docs.append(doc)
    check_targets(docs)
    return docs


def check_targets(docs: Iterable[dict[str, Any]]) -> None:
    """Refuse contracts that write the same table (or one's table is another's quarantine table).

    Each run owns the prefix ``lake_run_id=<run>`` of its tables: when an attempt of the run
    commits, it removes what other attempts left below that prefix, and a run given up is removed
    whole. Two datasets that share a table and a run id (the state machine gives every dataset of
    one execution the same) would delete each other's committed rows.
    """
    owners: dict[tuple[str, str], str] = {}
    problems, first = [], ""
    for doc in docs:
        contract = Contract.from_dict(doc)
        for table in (contract.table, contract.quarantine_table):
            key = (contract.database, table)
            other = owners.get(key)
            if other is not None and other != contract.dataset_id:
                problems.append(f"target: {contract.dataset_id} and {other} both write {key[0]}.{key[1]}; "
                                "every dataset needs a table of its own")
                first = first or contract.dataset_id
            owners.setdefault(key, contract.dataset_id)
    if problems:
        raise ContractError(first, problems)


#: Plain (unquoted) scalars that YAML 1.1 parsers, such as PyYAML and Terraform's ``yamldecode``,
#: read as booleans, octal or base-60 numbers, and YAML 1.2 parsers as text or decimals; and the
#: one-letter booleans that some 1.1 parsers take and others do not.
_AMBIGUOUS = re.compile(
    r"^(?:y|Y|n|N|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF"  # booleans in 1.1 only
    r"|[-+]?0[0-9_]+"  # octal in 1.1, decimal in 1.2
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"  # base 60 in 1.1
    r"|[-+]?[0-9]+_[0-9_]*"  # 1_000: a number in 1.1, text in 1.2
    r"|0o[0-7]+"  # octal in 1.2, text in 1.1
    r"|[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+"  # 1e3: text in PyYAML, a number in 1.2
    r")$"
)


def yaml_problems(text: str) -> list[str]:
    """Keys repeated within a mapping, and unquoted values that YAML parsers read differently
    (``NO`` is false for PyYAML and for the deployment's ``yamldecode``; ``Y`` only for the
    latter; ``010`` is 8 for one and 10 for the other): each must be quoted to mean text."""
    yaml = _yaml()
    problems: list[tuple[int, int, str]] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    stack = [root] if root is not None else []
    seen_nodes: set[int] = set()  # an alias may point back at its own node (a: &x [1, *x])
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if key.value in seen:
                    problems.append((key.start_mark.line, key.start_mark.column,
                                     f"key '{key.value}' appears twice in one mapping"))
                seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.ScalarNode) and node.style is None and _AMBIGUOUS.match(node.value):
            problems.append((node.start_mark.line, node.start_mark.column,
                             f"{node.value} is read as text by some YAML parsers and as a boolean or number by "
                             f"others; quote it ('{node.value}'), or write true, false or a plain number"))
        elif (isinstance(node, yaml.ScalarNode) and node.style is None and node.tag.endswith(":float")
              and _significant_digits(node.value) > 15):
            problems.append((node.start_mark.line, node.start_mark.column,
                             f"{node.value} is read as a binary floating-point number, which keeps about 15 "
                             f"significant digits (PyYAML reads it as {float(node.value)!r}), while Terraform's "
                             f"yamldecode keeps them all: quote it where text is taken ('{node.value}' as an "
                             f"allowed value), or write fewer digits"))
    return [f"line {line + 1}: {text}" for line, _, text in sorted(problems)]


def _significant_digits(number: str) -> int:
    """Significant digits of a YAML float as written, trailing zeros of a fraction left out
    (``0.00120`` has 2, ``1.5e3`` has 2)."""
    mantissa = re.split(r"[eE]", number.lstrip("+-"))[0].replace("_", "").replace(".", "")
    return len(mantissa.lstrip("0").rstrip("0") if "." in number else mantissa.lstrip("0"))


def _yaml() -> Any:
    import yaml  # only the loader needs PyYAML; the job reads JSON from DynamoDB

    return yaml


class ContractStore:
    """Reads contracts from the DynamoDB contracts table (hash key ``dataset_id``)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.ddb = dynamodb
        self.table = table

    def put(self, docs: Iterable[dict[str, Any]]) -> int:
        """Write contract items (each validated, and no two writing one table)."""
        docs = list(docs)
        check_targets(docs)
        count = 0
        for doc in docs:
            self.ddb.put_item(TableName=self.table, Item=contract_item(doc))
            count += 1
        logger.info("loaded %d contracts into %s", count, self.table)
        return count

    def replace_all(self, docs: Iterable[dict[str, Any]]) -> int:
        """Make the table hold exactly these contracts: write them, then delete the items of
        datasets not among them (a contract file deleted or renamed), as a deployment does."""
        docs = list(docs)
        count = self.put(docs)
        gone = sorted(set(self.dataset_ids(enabled_only=False)) - {str(d.get("dataset_id")) for d in docs})
        for dataset_id in gone:
            self.ddb.delete_item(TableName=self.table, Key={"dataset_id": {"S": dataset_id}})
        if gone:
            logger.info("deleted the contracts of %s from %s: no contract file names them", gone, self.table)
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
        try:
            contract = Contract.from_dict(doc)
        except ContractError as exc:
            if exc.dataset_id == dataset_id:
                raise
            # Named after the item asked for: the document's own id may be missing or another one.
            raise ContractError(dataset_id, exc.problems) from None
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
