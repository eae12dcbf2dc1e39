"""AWS Glue entry point of the ingest job: Glue's Spark session, then the shared job code."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict


def main(argv: list[str] | None = None) -> None:
    """Run one dataset on AWS Glue 5.1.

    Glue passes ``--dataset_id``, ``--run_id`` and the settings as job arguments (see
    ``lake_ingest._args``); the package itself arrives as the job's extra Python files.
    """
    from awsglue.context import GlueContext  # only importable on Glue
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    from lake_ingest._args import REQUIRED_ARGS, parse_job_args
    from lake_ingest._aws import AwsClients
    from lake_ingest._job import FAILS_A_GLUE_RUN, run_ingest

    argv = sys.argv if argv is None else argv
    glue_args = getResolvedOptions(argv, ["JOB_NAME", *REQUIRED_ARGS])
    args = parse_job_args(argv[1:])
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(glue_args["JOB_NAME"], glue_args)
    result = run_ingest(glue_context.spark_session, args.dataset_id, args.run_id, args.settings,
                        AwsClients(endpoint_url=args.aws_endpoint_url, region_name=args.aws_region))
    print(json.dumps(asdict(result), default=str))
    if result.status in FAILS_A_GLUE_RUN:
        raise RuntimeError(result.message)
    job.commit()


if __name__ == "__main__":
    main()
