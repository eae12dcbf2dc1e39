"""Run the ingest job on a laptop: a local SparkSession instead of Glue's, same arguments."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict

from ._args import parse_job_args
from ._aws import AwsClients
from ._job import FAILED, run_ingest
from ._spark import local_spark

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_job_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spark = local_spark()
    try:
        result = run_ingest(spark, args.dataset_id, args.run_id, args.settings,
                            AwsClients(endpoint_url=args.aws_endpoint_url, region_name=args.aws_region))
    finally:
        spark.stop()
    print(json.dumps(asdict(result), indent=2, default=str))
    return 1 if result.status == FAILED else 0


if __name__ == "__main__":
    raise SystemExit(main())
