"""The job's arguments, parsed the same way by the Glue entry script and the local command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ._job import JobSettings

#: Arguments the orchestration passes on every run (Glue style: ``--name value``).
REQUIRED_ARGS = ("dataset_id", "run_id")


@dataclass(frozen=True)
class JobArgs:
    dataset_id: str
    run_id: str
    settings: JobSettings
    aws_endpoint_url: str | None = None
    log_level: str = "INFO"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lake-ingest",
        description="Ingest the new raw files of one dataset into the curated zone.",
    )
    p.add_argument("--dataset_id", required=True, help="contract to run (its id in the contracts table)")
    p.add_argument("--run_id", required=True, help="id of this run, e.g. the Step Functions execution name")
    defaults = {f.name: f.default for f in fields(JobSettings)}
    for name in ("raw_uri", "curated_uri", "quarantine_uri"):
        p.add_argument(f"--{name}", required=True, help=f"{name.split('_')[0]} zone: s3://bucket[/prefix] or a directory")
    for name in ("contracts_table", "ledger_table", "runs_table", "metrics_namespace"):
        p.add_argument(f"--{name}", default=defaults[name], help=f"default: {defaults[name]}")
    for name in ("lock_lease_seconds", "max_files_per_run"):
        p.add_argument(f"--{name}", type=int, default=defaults[name], help=f"default: {defaults[name]}")
    p.add_argument("--aws_endpoint_url", default=None, help="send AWS calls here (e.g. a moto server)")
    p.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def parse_job_args(argv: Sequence[str]) -> JobArgs:
    """Parse ``--name value`` arguments; unknown ones (Glue adds its own) are ignored."""
    ns, _unknown = build_parser().parse_known_args(list(argv))
    settings = JobSettings(**{f.name: getattr(ns, f.name) for f in fields(JobSettings)})
    if settings.lock_lease_seconds < 0 or settings.max_files_per_run < 1:
        raise SystemExit("lock_lease_seconds must be >= 0 and max_files_per_run >= 1")
    return JobArgs(ns.dataset_id, ns.run_id, settings, ns.aws_endpoint_url, ns.log_level)
