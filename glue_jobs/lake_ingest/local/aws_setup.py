"""Create the job's DynamoDB tables and Glue databases in an emulated account, and load contracts."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._aws import AwsClients
from .._contract import Contract, ContractError
from .._contract_store import ContractStore, load_contract_files
from .._job import JobSettings

logger = logging.getLogger(__name__)

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

#: Key schema of each table: (attribute, type) for the hash key, then the range key.
TABLE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "contracts_table": (("dataset_id", "S"),),
    "ledger_table": (("dataset_id", "S"), ("file_id", "S")),
    "runs_table": (("dataset_id", "S"), ("run_id", "S")),
}


def create_tables(dynamodb: Any, settings: JobSettings) -> None:
    """Create the contracts, ledger and runs tables (on-demand billing), if missing."""
    existing = {name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]}
    for field_name, keys in TABLE_KEYS.items():
        name = getattr(settings, field_name)
        if name in existing:
            continue
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in keys],
            KeySchema=[{"AttributeName": a, "KeyType": kt} for (a, _), kt in zip(keys, ("HASH", "RANGE"), strict=False)],
            BillingMode="PAY_PER_REQUEST",
        )
        logger.info("created DynamoDB table %s", name)


def create_databases(glue: Any, databases: Iterable[str]) -> None:
    for db in sorted(set(databases)):
        try:
            glue.create_database(DatabaseInput={"Name": db, "Description": "data lake curated zone"})
        except glue.exceptions.AlreadyExistsException:
            pass


def bootstrap(clients: AwsClients, settings: JobSettings, contracts_dir: str | Path = CONTRACTS_DIR,
              docs: list[dict[str, Any]] | None = None) -> list[Contract]:
    """Tables, databases and contracts: what the deployment creates on AWS, made in moto. The
    contracts table then holds exactly ``docs``: as Terraform deletes the item of a contract file
    that is gone, the item of a dataset not among them is deleted."""
    docs = load_contract_files(contracts_dir) if docs is None else docs
    create_tables(clients.dynamodb, settings)
    ContractStore(clients.dynamodb, settings.contracts_table).replace_all(docs)
    contracts = [Contract.from_dict(d) for d in docs]
    create_databases(clients.glue, [c.database for c in contracts])
    return contracts


def main(argv: list[str] | None = None) -> int:
    """Prepare an emulated account served by a moto server for ``lake-ingest --aws_endpoint_url``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m lake_ingest.local.aws_setup", description=main.__doc__)
    p.add_argument("--endpoint-url", required=True, help="the moto server, e.g. http://127.0.0.1:5000")
    p.add_argument("--region", default="eu-west-1", help="region of the emulated account (eu-west-1)")
    p.add_argument("--contracts-dir", default=str(CONTRACTS_DIR), help="contract files to load (the repository's)")
    args = p.parse_args(argv)
    settings = JobSettings(raw_uri="", curated_uri="", quarantine_uri="")  # only the table names are used
    try:
        contracts = bootstrap(AwsClients(endpoint_url=args.endpoint_url, region_name=args.region), settings,
                              args.contracts_dir)
    except ContractError as exc:
        print(f"{p.prog}: {exc}", file=sys.stderr)
        return 2
    print(f"{args.endpoint_url}: tables {settings.contracts_table}, {settings.ledger_table}, "
          f"{settings.runs_table}; databases {', '.join(sorted({c.database for c in contracts}))}; "
          f"contracts {', '.join(c.dataset_id for c in contracts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
