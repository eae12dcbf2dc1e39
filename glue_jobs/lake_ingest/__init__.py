"""Config-driven ingest of raw files into a Parquet data lake, on AWS Glue or on a laptop."""

from __future__ import annotations

from ._aws import AwsClients
from ._catalog import SchemaConflict, TableSpec
from ._contract import Column, Contract, ContractError, FileFormat, Rule, Source
from ._contract_store import ContractNotFound, ContractStore, contract_item, load_contract_files
from ._job import DataQualityError, JobSettings, RunResult, configure_spark, run_ingest
from ._state import DatasetLocked, StateStore

__all__ = [
    "AwsClients", "Column", "Contract", "ContractError", "ContractNotFound", "ContractStore", "DataQualityError",
    "DatasetLocked", "FileFormat", "JobSettings", "Rule", "RunResult", "SchemaConflict", "Source", "StateStore",
    "TableSpec", "configure_spark", "contract_item", "load_contract_files", "run_ingest",
]
