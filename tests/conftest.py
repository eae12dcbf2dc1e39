"""Shared fixtures: one local Spark session, emulated AWS (moto) and a temporary lake."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
for _var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
    os.environ[_var] = "testing"
os.environ.pop("AWS_PROFILE", None)

from moto import mock_aws  # noqa: E402

from lake_ingest import AwsClients, JobSettings  # noqa: E402
from lake_ingest.local.aws_setup import CONTRACTS_DIR, bootstrap  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    from lake_ingest import configure_spark
    from lake_ingest._spark import local_spark

    session = local_spark("lake-ingest-tests", cores=2, driver_memory="2g", shuffle_partitions=4)
    configure_spark(session)  # the job applies the same settings to Glue's session
    yield session
    session.stop()


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    """A fresh emulated account per test."""
    with mock_aws():
        yield AwsClients(region_name="eu-west-1")


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    for zone in ("raw", "curated", "quarantine"):
        (root / zone).mkdir(parents=True)
    return root


@pytest.fixture
def settings(lake: Path) -> JobSettings:
    return JobSettings(raw_uri=str(lake / "raw"), curated_uri=str(lake / "curated"),
                       quarantine_uri=str(lake / "quarantine"), lock_lease_seconds=600)


@pytest.fixture
def contracts_dir() -> Path:
    return CONTRACTS_DIR


@pytest.fixture
def deployed(aws: AwsClients, settings: JobSettings):
    """The emulated account with tables, databases and the repository's contracts loaded."""
    return bootstrap(aws, settings)


def metric_sum(aws: AwsClients, settings: JobSettings, name: str, dataset: str = "orders") -> float:
    """The sum of a CloudWatch metric of a dataset over the last hour (tests import it)."""
    now = dt.datetime.now(dt.UTC)
    stats = aws.cloudwatch.get_metric_statistics(
        Namespace=settings.metrics_namespace, MetricName=name, Dimensions=[{"Name": "DatasetId", "Value": dataset}],
        Statistics=["Sum"], StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1), Period=3600)
    return sum(p["Sum"] for p in stats["Datapoints"])
