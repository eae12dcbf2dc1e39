"""The local demo: emulated AWS, generated on-premise extracts, the ingest of every dataset, then
two queries: one over the curated tables, and one that counts the rules that rejected rows in the
quarantine tables."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from .._aws import AwsClients
from .._contract import ContractError
from .._contract_store import ContractStore
from .._job import JobSettings, RunResult, run_ingest
from .._spark import local_spark
from .._state import StateStore
from .athena import LocalAthena, format_table
from .aws_setup import CONTRACTS_DIR, bootstrap, create_tables
from .aws_state import StateError, load_state, save_state
from .orchestration import DEFINITION_FILE, LocalPipeline, emulated_services, run_execution
from .sample_data import ExtractConflict, generate_extracts

logger = logging.getLogger(__name__)

#: The status shown for a dataset that has no run record for the demo's run id.
NO_RECORD = "NOT RUN"

EXAMPLE_SQL = """
SELECT c.country,
       o.status,
       count(*)                 AS orders,
       sum(o.amount)            AS revenue,
       count(DISTINCT o.customer_id) AS customers
FROM sales.orders o
JOIN sales.customers c ON c.customer_id = o.customer_id
GROUP BY 1, 2
ORDER BY revenue DESC
LIMIT 8
""".strip()

def quarantine_sql(tables: Sequence[str]) -> str | None:
    """The rules that rejected rows, per dataset, over the quarantine tables the catalog lists (a
    dataset that never rejected a row has none); None when there is no such table."""
    parts = [f"SELECT '{name.split('.', 1)[1].removesuffix('_quarantine')}' AS dataset, v.rule, v.action, "
             f"count(*) AS rows FROM {name}, UNNEST(lake_violations) AS t(v) GROUP BY 1, 2, 3"
             for name in sorted(tables) if name.endswith("_quarantine")]
    # a quarantined row lists every rule it broke, warnings included (action warn)
    return "\nUNION ALL\n".join(parts) + "\nORDER BY 1, 4 DESC, 2" if parts else None


#: What ``--fresh`` may delete in the lake directory: the demo's own files and nothing else (the
#: ``.partial`` state is what a demo stopped while saving leaves).
LAKE_ENTRIES = ("raw", "curated", "quarantine", "_emulated_aws_state.json", "_emulated_aws_state.json.partial")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lake-demo", description=__doc__)
    p.add_argument("--lake-dir", default=".local-lake", help="where the local buckets live (default .local-lake)")
    p.add_argument("--days", type=int, default=5, help="daily extracts per dataset (default 5)")
    p.add_argument("--rows-per-file", type=int, default=20_000, help="rows per extract (default 20000); a meter-readings file holds "
                   "whole days of quarter-hourly readings (96 per meter), so about as many, plus a few "
                   "re-sent readings")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated data (default 7)")
    p.add_argument("--fresh", action="store_true", help="delete the lake and the saved emulator state first")
    p.add_argument("--sql", default=EXAMPLE_SQL, help="query to run over the curated tables at the end")
    p.add_argument("--step-functions", action="store_true",
                   help="run the ingest through the deployed state machine definition (moto executes it; "
                        "each Glue job run it starts is the real job on local Spark)")
    return p


def _settings(root: Path) -> JobSettings:
    root = root.absolute()  # the catalog's locations must not depend on the working directory
    return JobSettings(raw_uri=str(root / "raw"), curated_uri=str(root / "curated"),
                       quarantine_uri=str(root / "quarantine"))


def _say(text: str = "") -> None:
    print(text, flush=True)


def _prefixed(dataset_id: str) -> Callable[[str], None]:
    return lambda msg: _say(f"       [{dataset_id}] {msg}")


def _orchestrated(spark: SparkSession, clients: AwsClients, settings: JobSettings, run_id: str) -> list[RunResult]:
    """One execution of the state machine over every dataset; results from the run records."""
    pipeline = LocalPipeline(clients, settings, name="datalake-demo").deploy()
    _say(f"       state machine {pipeline.state_machine_arn.rsplit(':', 1)[-1]} (definition: "
         f"{DEFINITION_FILE.relative_to(DEFINITION_FILE.parents[3])})")

    def on_event(event: dict[str, Any]) -> None:
        details = event.get("stateEnteredEventDetails")
        if details and details["name"] in ("PlanDatasets", "IngestDatasets", "Summarise"):
            _say(f"       [step functions] {details['name']}")
        elif event["type"] in ("ExecutionSucceeded", "ExecutionFailed"):
            _say(f"       [step functions] {event['type']}")

    with emulated_services(spark, clients, on_progress=lambda d, msg: _say(f"       [{d}] {msg}")):
        execution = run_execution(clients, pipeline.state_machine_arn, {"trigger": "schedule"}, name=run_id,
                                  on_event=on_event)
    state = StateStore(clients.dynamodb, settings.ledger_table, settings.runs_table)
    # A failed execution has no output: its datasets are those the schedule plans, every enabled one.
    planned = ([item["dataset_id"] for item in execution.output["results"]] if execution.output
               else ContractStore(clients.dynamodb, settings.contracts_table).dataset_ids())
    results = []
    for dataset_id in planned:
        record = state.get_run(dataset_id, run_id) or {}
        # no record: the run did not start (the dataset was locked, or the execution stopped first)
        results.append(RunResult.from_record(record, dataset_id=dataset_id, run_id=run_id,
                                             status=record.get("status", NO_RECORD)))
    if execution.status != "SUCCEEDED":
        _say(f"       execution {execution.status}: {execution.cause}")
        results.append(RunResult("(execution)", run_id, status=execution.status))
    return results


def run_demo(root: Path, days: int, rows_per_file: int, seed: int, sql: str,
             step_functions: bool = False) -> list[RunResult]:
    """Everything the demo does, for tests and notebooks as well as the command. Returns a result
    per dataset, plus one named ``(execution)`` or ``(query)`` for a failed execution or query."""
    from moto import mock_aws

    for var, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"),
                       ("AWS_DEFAULT_REGION", "eu-west-1")):
        os.environ.setdefault(var, value)
    settings = _settings(root)
    state_file = root / "_emulated_aws_state.json"
    _say(f"== 1/4  on-premise extracts -> {root / 'raw'}  ({days} days x {rows_per_file:,} rows, seed {seed})")
    started = time.monotonic()
    files = generate_extracts(root / "raw", days=days, rows_per_file=rows_per_file, seed=seed)
    _say(f"       {len(files)} files ready in {time.monotonic() - started:.1f}s")

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients = AwsClients(region_name="eu-west-1")
        _say("== 2/4  emulated AWS (moto): DynamoDB tables, Glue databases, contracts from "
             f"{CONTRACTS_DIR.relative_to(CONTRACTS_DIR.parents[1])}/")
        create_tables(clients.dynamodb, settings)
        if load_state(clients, state_file):
            _say(f"       restored ledger, runs and catalog of earlier runs from {state_file.name}")
        # after the saved state: the contract files are what the job reads, as after a deployment
        bootstrap(clients, settings, CONTRACTS_DIR)
        spark = local_spark("lake-demo", progress_bar=sys.stdout.isatty())
        run_id = "demo-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        tables = [settings.contracts_table, settings.ledger_table, settings.runs_table]
        results: list[RunResult] = []
        try:
            datasets = ContractStore(clients.dynamodb, settings.contracts_table).dataset_ids()
            _say(f"== 3/4  ingest run {run_id}: {', '.join(datasets)}")
            if step_functions:
                results = _orchestrated(spark, clients, settings, run_id)
                datasets = []
            for dataset_id in datasets:
                t0 = time.monotonic()
                try:
                    result = run_ingest(spark, dataset_id, run_id, settings, clients,
                                        on_progress=_prefixed(dataset_id))
                except Exception as exc:  # one failed dataset does not stop the others (as in the state machine)
                    _prefixed(dataset_id)(f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
                    record = StateStore(clients.dynamodb, settings.ledger_table,
                                        settings.runs_table).get_run(dataset_id, run_id) or {}
                    result = RunResult.from_record(record, dataset_id=dataset_id, run_id=run_id, status="FAILED")
                result.seconds = round(time.monotonic() - t0, 2)
                results.append(result)
                # after each dataset: a killed demo keeps what the datasets before it did
                save_state(clients, state_file, tables)
        finally:
            spark.stop()
            save_state(clients, state_file, tables)
        _say()
        _say(format_table(
            ["dataset", "status", "files new", "skipped", "failed", "empty", "rows in", "written", "quarantined",
             "seconds"],
            [[r.dataset_id, r.status, r.files_ingested, r.files_skipped, r.files_failed, r.files_empty, r.rows_read,
              r.rows_written, r.rows_quarantined, f"{r.seconds:.1f}"] for r in results]))
        if all(r.status == "SUCCEEDED" and r.rows_read == 0 and r.files_failed == 0 and r.files_empty == 0
               for r in results):
            _say("\nNothing new to ingest: every raw file is already in the ledger.")
        _say("\n== 4/4  SQL over the curated tables (DuckDB reading the partitions the Glue catalog lists,"
             " as Athena would)")
        with LocalAthena(clients.glue) as athena:
            rejected = quarantine_sql(athena.tables())
            for query in (sql, rejected):
                if query is None:
                    _say("\nNo quarantine table yet: no run has rejected a row.")
                    continue
                _say("\n" + query)
                try:
                    header, rows = athena.query_with_header(query)
                except Exception as exc:  # a table a failed dataset never created, a mistake in --sql
                    _say(f"query failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                    results.append(RunResult("(query)", run_id, status="FAILED"))
                    continue
                _say(format_table(header, rows))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.days < 1 or args.rows_per_file < 1:
        parser.error("--days and --rows-per-file must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = Path(args.lake_dir).resolve()
    if root.exists() and not root.is_dir():
        parser.error(f"--lake-dir {root} is a file, not a directory")
    if args.fresh and root.exists():
        others = sorted(p.name for p in root.iterdir() if p.name not in LAKE_ENTRIES and not p.name.startswith("."))
        if others:
            parser.error(f"--fresh deletes only a lake the demo made; {root} also holds {', '.join(others[:5])}"
                         + (" ..." if len(others) > 5 else ""))
        for name in LAKE_ENTRIES:
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    try:
        results = run_demo(root, args.days, args.rows_per_file, args.seed, args.sql, args.step_functions)
    except (ExtractConflict, ContractError, StateError) as exc:
        _say(f"lake-demo: {exc}")
        return 2
    return 0 if results and all(r.status == "SUCCEEDED" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
