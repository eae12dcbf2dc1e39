"""Run the ingest job on a laptop: a local SparkSession instead of Glue's, same arguments."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict

from botocore.exceptions import BotoCoreError, ClientError

from ._args import parse_job_args
from ._aws import AwsClients, NoRegionError
from ._contract import ContractError
from ._job import FAILED, LOCKED, CommitBlocked, RunResult, run_ingest
from ._spark import local_spark

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one dataset and print the run's result as JSON: exit status 0 when it succeeded (or
    found nothing to do), 1 when the run failed, 2 for a contract or setting that stops it before
    it starts (the message says which: an AWS error then, a table that does not exist or an
    endpoint that does not answer, is one, and so is an earlier run's commit that cannot be
    completed), 3 when another run holds the dataset's lock (the run
    did nothing)."""
    args = parse_job_args(sys.argv[1:] if argv is None else argv, strict=True)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spark = local_spark()
    try:
        result = run_ingest(spark, args.dataset_id, args.run_id, args.settings,
                            AwsClients(endpoint_url=args.aws_endpoint_url, region_name=args.aws_region))
    except Exception as exc:
        recorded = getattr(exc, "run_result", None)
        if not isinstance(recorded, RunResult):  # the run did not start
            if isinstance(exc, ContractError | NoRegionError | CommitBlocked):
                print(f"lake-ingest: {exc}", file=sys.stderr)
                return 2
            if isinstance(exc, ClientError | BotoCoreError):
                print(f"lake-ingest: the run could not start: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 2
            raise  # an error of this program
        logger.error("the run failed", exc_info=True)
        result = recorded
    finally:
        spark.stop()
    print(json.dumps(asdict(result), indent=2, default=str))
    return {FAILED: 1, LOCKED: 3}.get(result.status, 0)


if __name__ == "__main__":
    raise SystemExit(main())
