"""The job's arguments, parsed the same way by the Glue entry script and the local command."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ._contract import DATASET_ID_PATTERN
from ._job import RUN_ID_PATTERN, JobSettings

#: Arguments the orchestration passes on every run (Glue style: ``--name value``).
REQUIRED_ARGS = ("dataset_id", "run_id")
#: The shortest dataset lock lease: a lease shorter than a run lets a second run in beside it.
MIN_LOCK_LEASE_SECONDS = 30
#: Glue's own arguments are dashed or capitalised (``--job-bookmark-option``, ``--JOB_ID``); an
#: unknown argument in this job's style is a mistake, not one of Glue's.
_OUR_STYLE = re.compile(r"^--[a-z][a-z0-9_]*$")
#: Glue's own parameters that happen to look like this job's.
GLUE_LOWER_CASE = {"--conf", "--class"}


@dataclass(frozen=True)
class JobArgs:
    dataset_id: str
    run_id: str
    settings: JobSettings
    aws_endpoint_url: str | None = None
    log_level: str = "INFO"
    aws_region: str | None = None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lake-ingest",
        description="Ingest the new raw files of one dataset into the curated zone.",
        allow_abbrev=False,
    )
    p.add_argument("--dataset_id", required=True, help="contract to run (its id in the contracts table)")
    p.add_argument("--run_id", required=True, help="id of this run, e.g. the Step Functions execution name")
    defaults = {f.name: f.default for f in fields(JobSettings)}
    for name in ZONE_ARGS:
        p.add_argument(f"--{name}", required=True, help=f"{name.split('_')[0]} zone: s3://bucket[/prefix] or a directory")
    for name in ("contracts_table", "ledger_table", "runs_table", "metrics_namespace"):
        p.add_argument(f"--{name}", default=defaults[name], help=f"default: {defaults[name]}")
    for name in ("lock_lease_seconds", "max_files_per_run"):
        p.add_argument(f"--{name}", type=int, default=defaults[name], help=f"default: {defaults[name]}")
    p.add_argument("--aws_endpoint_url", default=None, help="send AWS calls here (e.g. a moto server)")
    p.add_argument("--aws_region", default=None,
                   help="region of the tables, catalog and metrics (default: AWS_REGION or AWS_DEFAULT_REGION)")
    p.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


ZONE_ARGS = ("raw_uri", "curated_uri", "quarantine_uri")


def _zone_uri(parser: argparse.ArgumentParser, name: str, uri: str) -> str:
    """A zone's URI as the job uses it: ``s3://bucket[/prefix]``, or a directory made absolute,
    since the catalog records the locations of the files (a relative one would be read from
    wherever the reader stands). An empty value (an unset shell variable) is refused: read as
    the working directory, it found nothing new, or wrote the tables from the file system's root."""
    if not uri.strip():
        parser.error(f"--{name} is empty: give s3://bucket[/prefix] or a directory")
    if uri.startswith("s3://"):
        if not uri[len("s3://"):].split("/", 1)[0]:
            parser.error(f"--{name} '{uri}' names no bucket: give s3://bucket[/prefix]")
        return uri
    return uri if "://" in uri else os.path.abspath(uri)


def parse_job_args(argv: Sequence[str], strict: bool = False) -> JobArgs:
    """Parse ``--name value`` arguments. Glue adds arguments of its own, which are ignored; an
    unknown argument written like this job's (``--ledger-table`` for ``--ledger_table``, a
    misspelt name) is an error, so that a setting is never silently left at its default.
    ``strict`` (the local command, which Glue does not call) refuses every unknown argument."""
    parser = build_parser()
    ns, unknown = parser.parse_known_args(list(argv))
    if strict and unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    ours = {a.dest for a in parser._actions}
    for arg in unknown:
        name = arg.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        guess = name[2:].replace("-", "_")
        if guess in ours:
            parser.error(f"unknown argument {name}: did you mean --{guess}?")
        if _OUR_STYLE.match(name) and name not in GLUE_LOWER_CASE:
            parser.error(f"unknown argument {name}")
    for name in ZONE_ARGS:
        setattr(ns, name, _zone_uri(parser, name, getattr(ns, name)))
    settings = JobSettings(**{f.name: getattr(ns, f.name) for f in fields(JobSettings)})
    if settings.lock_lease_seconds < MIN_LOCK_LEASE_SECONDS:
        parser.error(f"--lock_lease_seconds must be at least {MIN_LOCK_LEASE_SECONDS} (it should match the Glue "
                     "job's timeout: a shorter lease lets a second run in beside a live one)")
    if settings.max_files_per_run < 1:
        parser.error("--max_files_per_run must be at least 1")
    if not DATASET_ID_PATTERN.match(ns.dataset_id):
        parser.error(f"--dataset_id '{ns.dataset_id}' must match {DATASET_ID_PATTERN.pattern}")
    if not RUN_ID_PATTERN.match(ns.run_id):
        parser.error(f"--run_id '{ns.run_id}' must match {RUN_ID_PATTERN.pattern}")
    if ns.aws_region is not None and not re.fullmatch(r"[a-z]{2,}(-[a-z0-9]+)*-[0-9]+", ns.aws_region):
        parser.error(f"--aws_region '{ns.aws_region}' is not a region name such as eu-west-1")
    return JobArgs(ns.dataset_id, ns.run_id, settings, ns.aws_endpoint_url, ns.log_level, ns.aws_region)
