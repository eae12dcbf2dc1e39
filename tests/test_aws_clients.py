"""The injectable boto3 clients: one session for all of them, each client made once."""

from __future__ import annotations

import boto3
import pytest

from lake_ingest import AwsClients
from lake_ingest._aws import NoRegionError


def test_clients_come_from_one_default_session(monkeypatch):
    sessions = []
    real_session = boto3.session.Session

    def counting_session(*args, **kwargs):
        sessions.append(kwargs)
        return real_session(*args, **kwargs)

    monkeypatch.setattr(boto3.session, "Session", counting_session)
    clients = AwsClients(region_name="eu-west-1", endpoint_url="http://127.0.0.1:5999")
    assert clients.dynamodb is clients.dynamodb
    made = [clients.glue, clients.cloudwatch, clients.s3]
    assert len(sessions) == 1  # not one per client: each session loads botocore's data again
    assert {c.meta.region_name for c in made} == {"eu-west-1"}
    assert {c.meta.endpoint_url for c in made} == {"http://127.0.0.1:5999"}


def test_a_given_session_is_used_as_it_is(monkeypatch):
    given = boto3.session.Session(region_name="us-east-2")
    monkeypatch.setattr(boto3.session, "Session", lambda *a, **k: (_ for _ in ()).throw(AssertionError("new session")))
    clients = AwsClients(session=given)
    assert clients.glue.meta.region_name == "us-east-2"
    assert clients.glue is clients.client("glue")


def test_the_region_is_never_guessed(monkeypatch, tmp_path):
    """A client in a guessed region would look for the tables in the wrong place: without a
    region given or configured, making a client fails and says how to give one."""
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(NoRegionError, match="pass --aws_region"):
        _ = AwsClients().dynamodb
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")  # as Lambda sets it
    assert AwsClients().dynamodb.meta.region_name == "ap-southeast-2"
    assert AwsClients(region_name="us-west-2").dynamodb.meta.region_name == "us-west-2"
