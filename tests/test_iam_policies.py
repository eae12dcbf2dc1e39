"""The IAM policies in Terraform against the code they serve.

The ingest job's runs are recorded against moto: every AWS operation the job itself makes must be
allowed by the Glue job role's policy, and every action that policy grants must be used by the
job or be one that Glue or Spark need on the job's behalf (named below with the reason). The state
machine's service integrations are checked against its role the same way.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest
from moto import mock_aws

from lake_ingest import AwsClients, DataQualityError, JobSettings, run_ingest
from lake_ingest._contract_store import ContractStore, load_contract_files
from lake_ingest._storage import S3Storage
from lake_ingest.local.aws_setup import CONTRACTS_DIR, bootstrap
from lake_ingest.local.orchestration import render_definition
from lake_ingest.local.sample_data import generate_extracts

REPO = Path(__file__).resolve().parents[1]
GLUE_JOB_TF = REPO / "terraform" / "modules" / "glue_ingest_job" / "main.tf"
STATE_MACHINE_TF = REPO / "terraform" / "modules" / "state_machine" / "main.tf"
S3_ZONES_TF = REPO / "terraform" / "modules" / "s3_zones" / "main.tf"
ASL = REPO / "terraform" / "modules" / "state_machine" / "ingest.asl.json"

#: IAM actions behind the S3 operations of ``S3Storage`` (the others are named like their action).
S3_ACTIONS = {"ListObjectsV2": "s3:ListBucket", "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
              "DeleteObjects": "s3:DeleteObject", "DeleteObject": "s3:DeleteObject", "PutObject": "s3:PutObject"}

#: Granted to the job role for what Glue and Spark do on the job's behalf, not the job's own
#: boto3 calls: action pattern -> why.
GRANTED_FOR_GLUE = {
    "s3:GetBucketLocation": "Spark's S3 file system asks for the region of each bucket it opens",
    "s3:ListBucketMultipartUploads": "Spark's S3 committer lists the uploads it may have to abort",
    "s3:AbortMultipartUpload": "Spark aborts the uploads of failed tasks",
    "s3:ListMultipartUploadParts": "Spark's S3 committer completes multipart uploads",
    "glue:GetConnection": "Glue reads the job's network and JDBC connections at start",
    "logs:*": "Glue writes the job's driver and executor logs",
    "kms:*": "S3 objects, logs, bookmarks and the secret are encrypted with the lake key",
    "ec2:*": "Glue puts the job's network interfaces into the VPC",
    "secretsmanager:*": "the JDBC connection reads the on-premise database's credentials",
}
#: Calls in the job's package that the job never makes on AWS: action -> where they are used.
LOCAL_ONLY_CALLS = {
    "dynamodb:Scan": "ContractStore.dataset_ids, used by the local demo and the notebooks",
}
PACKAGE = REPO / "glue_jobs" / "lake_ingest"
_SERVICE_OF = {"ddb": "dynamodb", "dynamodb": "dynamodb", "glue": "glue", "cloudwatch": "cloudwatch", "s3": "s3"}


def calls_in_source() -> set[str]:
    """The IAM actions of the boto3 calls written in the job's package (``local/`` left out)."""
    out = set()
    for path in PACKAGE.glob("*.py"):
        for match in re.finditer(r"\b(ddb|dynamodb|glue|cloudwatch|s3)\.(?:get_paginator\(\"([a-z_0-9]+)\"\)|"
                                 r"([a-z_0-9]+)\()", path.read_text(encoding="utf-8")):
            client, paginated, method = match.groups()
            operation = "".join(part.title() for part in (paginated or method).split("_"))
            service = _SERVICE_OF[client]
            out.add(S3_ACTIONS.get(operation, f"s3:{operation}") if service == "s3" else f"{service}:{operation}")
    return out


# --------------------------------------------------------------------------- policies from HCL

def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _statements(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from block.get("statement", [])
    for dynamic in block.get("dynamic", []):
        for body in dynamic.values():
            yield from body.get("content", [])


def policy_actions(path: Path, name: str) -> set[str]:
    """The actions of every statement of ``data "aws_iam_policy_document" "<name>"`` in ``path``."""
    with open(path, encoding="utf-8") as fh:
        parsed = hcl2.load(fh)
    for data in parsed.get("data", []):
        for kind, documents in data.items():
            if _unquote(kind) != "aws_iam_policy_document":
                continue
            for doc_name, body in documents.items():
                if _unquote(doc_name) == name:
                    return {_unquote(a) for st in _statements(body) for a in st.get("actions", [])}
    raise AssertionError(f'no aws_iam_policy_document "{name}" in {path}')


def allows(granted: set[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), g.lower()) for g in granted)


# --------------------------------------------------------------------------- recording the job

def recording_clients() -> tuple[AwsClients, set[str]]:
    """Clients whose every call is recorded as the IAM action it needs."""
    session = boto3.session.Session(region_name="eu-west-1")
    actions: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        actions.add(S3_ACTIONS[model.name] if service == "s3" else f"{service}:{model.name}")

    session.events.register("before-call", record)
    return AwsClients(session=session, region_name="eu-west-1"), actions


def _add_customers_with_a_new_field(raw: Path) -> None:
    """One more day of customers whose records carry a field the contract does not know."""
    first = sorted((raw / "crm" / "customers").glob("*.jsonl.gz"))[0]
    record = json.loads(gzip.decompress(first.read_bytes()).decode().splitlines()[0])
    record["segment"] = "gold"
    path = first.with_name("customers_2026-12-31.jsonl.gz")
    path.write_bytes(gzip.compress((json.dumps(record) + "\n").encode(), mtime=0))


@pytest.fixture(scope="module")
def job_actions(spark, tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """The IAM actions of the job's own calls in runs that take every path of the job:
    first runs of the three sample datasets (created tables, partitions, quarantine, settled
    duplicates, ledger, run records, metrics), a run with nothing new, a run that adds a column,
    a run whose fail rule stops it, and the S3 storage adapter's listing, reads, writes and deletes.
    Recorded once for the tests of this module, in an emulated account of its own."""
    lake = tmp_path_factory.mktemp("iam") / "lake"
    settings = JobSettings(raw_uri=str(lake / "raw"), curated_uri=str(lake / "curated"),
                           quarantine_uri=str(lake / "quarantine"))
    with mock_aws():
        aws = AwsClients(region_name="eu-west-1")
        bootstrap(aws, settings)
        yield _record_job_runs(spark, aws, lake, settings)


def _record_job_runs(spark: Any, aws: AwsClients, lake: Path, settings: JobSettings) -> set[str]:
    clients, actions = recording_clients()
    generate_extracts(lake / "raw", days=2, rows_per_file=300)
    for dataset in ("orders", "customers", "meter_readings"):
        assert run_ingest(spark, dataset, "run-1", settings, clients).status == "SUCCEEDED"
    assert run_ingest(spark, "orders", "run-2", settings, clients).message == "nothing new to ingest"
    _add_customers_with_a_new_field(lake / "raw")
    assert run_ingest(spark, "customers", "run-2", settings, clients).added_columns == ["segment"]

    doc = copy.deepcopy(next(d for d in load_contract_files(CONTRACTS_DIR) if d["dataset_id"] == "orders"))
    for rule in doc["quality"]:
        if rule["name"] == "amount_in_range":
            rule["action"] = "fail"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    generate_extracts(lake / "raw", days=1, rows_per_file=300, start_date=dt.date(2026, 12, 1),
                      datasets=["orders"])
    with pytest.raises(DataQualityError):
        run_ingest(spark, "orders", "run-3", settings, clients)

    s3 = clients.s3
    aws.s3.create_bucket(Bucket="lake-raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    aws.s3.put_object(Bucket="lake-raw", Key="erp/orders/a.csv", Body=b"ORDER_ID\n1\n")
    storage = S3Storage(s3)
    listed = list(storage.list("s3://lake-raw", "erp/orders/"))
    assert [o.key for o in listed] == ["erp/orders/a.csv"]
    assert storage.read_range(listed[0].uri, 0, 8) == b"ORDER_ID"
    assert storage.delete_prefix("s3://lake-raw/erp") == 1
    storage.put_bytes("s3://lake-raw/run/_lake_commit.json", b"{}")  # a commit manifest (Spark's writes go
    assert storage.get_bytes("s3://lake-raw/run/_lake_commit.json") == b"{}"  # to the local lake here)
    storage.delete("s3://lake-raw/run/_lake_commit.json")  # what another attempt of a run left
    assert list(storage.list("s3://lake-raw", "run/")) == []
    return actions


def test_the_recorded_runs_make_every_call_written_in_the_job(job_actions: set[str]) -> None:
    """So that a call on a path the runs above do not take cannot escape the checks below."""
    written = calls_in_source()
    assert {"dynamodb:PutItem", "glue:BatchCreatePartition", "s3:ListBucket"} <= written  # the scan works
    assert not sorted(written - job_actions - set(LOCAL_ONLY_CALLS))


def test_the_job_role_allows_every_call_of_the_job(job_actions: set[str]) -> None:
    # the recording saw the job's work, not an empty run
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "glue:GetTable",
            "glue:CreateTable", "glue:UpdateTable", "glue:BatchCreatePartition", "cloudwatch:PutMetricData",
            "s3:ListBucket", "s3:GetObject", "s3:DeleteObject"} <= job_actions
    granted = policy_actions(GLUE_JOB_TF, "job")
    missing = sorted(a for a in job_actions if not allows(granted, a))
    assert not missing, f"the job calls these but its role in {GLUE_JOB_TF.relative_to(REPO)} does not allow them"


def test_the_job_role_grants_nothing_the_job_and_glue_do_not_use(job_actions: set[str]) -> None:
    granted = policy_actions(GLUE_JOB_TF, "job")
    unused = sorted(g for g in granted if not any(fnmatch.fnmatchcase(a.lower(), g.lower()) for a in job_actions)
                    and not allows(set(GRANTED_FOR_GLUE), g))
    assert not unused, f"granted to the job role but neither called by the job nor needed by Glue: {unused}"
    stale = sorted(k for k in GRANTED_FOR_GLUE if not any(fnmatch.fnmatchcase(g.lower(), k.lower()) for g in granted))
    assert not stale, f"GRANTED_FOR_GLUE names actions the role no longer grants: {stale}"
    called = sorted(a for a in job_actions if allows(set(GRANTED_FOR_GLUE), a))
    assert not called, f"the job calls these itself, so GRANTED_FOR_GLUE's reason is not theirs: {called}"
    granted_local = sorted(a for a in LOCAL_ONLY_CALLS if allows(granted, a))
    assert not granted_local, f"the job never makes these calls on AWS: {granted_local}"


# --------------------------------------------------------------------------- the state machine

#: What each service integration of the state machine needs (AWS documents these per integration).
INTEGRATION_ACTIONS = {
    "arn:aws:states:::glue:startJobRun.sync": {"glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns",
                                               "glue:BatchStopJobRun"},
    "arn:aws:states:::dynamodb:getItem": {"dynamodb:GetItem"},
    "arn:aws:states:::dynamodb:updateItem": {"dynamodb:UpdateItem"},
    "arn:aws:states:::dynamodb:deleteItem": {"dynamodb:DeleteItem"},
    "arn:aws:states:::lambda:invoke": {"lambda:InvokeFunction"},
    "arn:aws:states:::sns:publish": {"sns:Publish"},
}
#: Granted to the state machine's role for the service itself: action pattern -> why.
GRANTED_FOR_STEP_FUNCTIONS = {
    "kms:*": "the topic, the tables and the execution state are encrypted with the lake key",
    "logs:*": "execution logs are delivered to CloudWatch Logs",
    "xray:*": "executions are traced",
}


def _task_resources(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("Type") == "Task":
            yield node["Resource"]
        for value in node.values():
            yield from _task_resources(value)
    elif isinstance(node, list):
        for value in node:
            yield from _task_resources(value)


def test_the_state_machine_role_allows_its_integrations_and_no_more() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text(encoding="utf-8")))
    definition = json.loads(render_definition(dict.fromkeys(placeholders, 1) | {"partition": "aws"}, ASL))  # 1 fits strings and numbers
    resources = set(_task_resources(definition))
    assert len(resources) >= 4  # the walk found the tasks, inside the Map state too
    unknown = sorted(resources - set(INTEGRATION_ACTIONS))
    assert not unknown, f"add the IAM actions of these integrations to INTEGRATION_ACTIONS: {unknown}"
    needed = set().union(*(INTEGRATION_ACTIONS[r] for r in resources))
    granted = policy_actions(STATE_MACHINE_TF, "state_machine")
    assert not sorted(a for a in needed if not allows(granted, a))
    unused = sorted(g for g in granted if g not in needed and not allows(set(GRANTED_FOR_STEP_FUNCTIONS), g))
    assert not unused, f"granted to the state machine but used by no task: {unused}"


def test_the_planner_role_allows_its_calls_and_no_more(aws: AwsClients, deployed, settings: JobSettings) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("plan_ingest", STATE_MACHINE_TF.parent / "functions" / "plan_ingest.py")
    assert spec and spec.loader
    planner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(planner)
    clients, actions = recording_clients()
    out = planner.plan({"trigger": "schedule"}, settings.contracts_table, "raw", clients.dynamodb)
    assert out["datasets"] == ["customers", "meter_readings", "orders"]
    granted = policy_actions(STATE_MACHINE_TF, "planner")
    assert actions == {"dynamodb:Scan"} and allows(granted, "dynamodb:Scan")
    runtime = {"logs:*": "the function's own log group", "kms:Decrypt": "the table and the environment are "
               "encrypted with the lake key", "xray:*": "active tracing"}
    assert not sorted(g for g in granted if g not in actions and not allows(set(runtime), g))


def test_the_claim_role_allows_its_calls_and_no_more(aws: AwsClients, deployed, settings: JobSettings) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("claim_dataset",
                                                  STATE_MACHINE_TF.parent / "functions" / "claim_dataset.py")
    assert spec and spec.loader
    claim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(claim)
    clients, actions = recording_clients()
    event = {"dataset_id": "orders", "run_id": "r1", "object_key": "erp/orders/a.csv", "etag": "e1"}
    assert claim.claim(event, settings.ledger_table, settings.runs_table, 600, clients.dynamodb)["action"] == "run"
    assert claim.claim({**event, "run_id": "r2"}, settings.ledger_table, settings.runs_table, 600,
                       clients.dynamodb)["action"] == "wait"
    granted = policy_actions(STATE_MACHINE_TF, "claim")
    assert actions == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert all(allows(granted, a) for a in actions)
    assert not sorted(g for g in granted if g not in actions)


ATHENA_TF = REPO / "terraform" / "modules" / "athena" / "main.tf"


def _query_statements() -> list[dict[str, Any]]:
    with open(ATHENA_TF, encoding="utf-8") as fh:
        parsed = hcl2.load(fh)
    docs = [body for data in parsed.get("data", []) for kind, documents in data.items()
            if _unquote(kind) == "aws_iam_policy_document"
            for name, body in documents.items() if _unquote(name) == "query"]
    assert len(docs) == 1, "the athena module defines the analysts' query policy once"
    return list(_statements(docs[0]))


def test_the_analysts_policy_reads_the_lake_and_writes_only_query_results() -> None:
    writes = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    for st in _query_statements():
        actions = {_unquote(a) for a in st["actions"]}
        resources = [_unquote(r) for r in st["resources"]] if isinstance(st["resources"], list) else [st["resources"]]
        text = " ".join(resources)
        assert "*" not in [r.strip() for r in resources], st["sid"]
        assert not [a for a in actions if a.startswith("glue:") and not a.startswith(("glue:Get", "glue:BatchGet"))]
        assert not {"s3:DeleteObject", "s3:*", "athena:*", "glue:*", "kms:*"} & actions, st["sid"]
        if actions & writes:  # writes go to the workgroup's result prefix only
            assert resources == ["${local.results_arn}/results/*"], st["sid"]
        if any(a.startswith("athena:") for a in actions):
            assert resources == ["${aws_athena_workgroup.this.arn}"], st["sid"]
        if "kms:Decrypt" in actions:
            assert resources == ["${var.kms_key_arn}"] and "kms:GenerateDataKey" in actions
        assert "raw" not in text.lower(), f"{st['sid']}: analysts do not read the raw zone"
    main = (REPO / "terraform" / "main.tf").read_text(encoding="utf-8")
    passed = re.search(r"readable_bucket_names\s*=\s*\{([^}]*)\}", main)
    assert passed and re.findall(r"(\w+)\s*=", passed.group(1)) == ["curated", "quarantine"]


def test_the_analysts_policy_allows_the_catalog_calls_a_query_makes(aws: AwsClients, deployed) -> None:
    """The catalog calls of the local Athena stand-in (databases, tables, partitions), recorded,
    are among the policy's catalog actions."""
    import uuid

    from lake_ingest.local.athena import LocalAthena

    table = f"orders_{uuid.uuid4().hex[:8]}"  # the emulated account may be shared with the recorded runs
    sd = {"Columns": [{"Name": "amount", "Type": "decimal(12,2)"}], "Location": "/nowhere/orders",
          "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
          "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}
    aws.glue.create_table(DatabaseName="sales", TableInput={
        "Name": table, "StorageDescriptor": sd, "PartitionKeys": [{"Name": "order_date", "Type": "date"}],
        "Parameters": {"classification": "parquet"}})
    aws.glue.create_partition(DatabaseName="sales", TableName=table, PartitionInput={
        "Values": ["2026-11-01"], "StorageDescriptor": {**sd, "Location": "/nowhere/orders/order_date=2026-11-01"}})
    clients, actions = recording_clients()
    with LocalAthena(clients.glue) as athena:
        assert f"sales.{table}" in athena.tables()
    granted = {_unquote(a) for st in _query_statements() for a in st["actions"]}
    assert {"glue:GetDatabases", "glue:GetTables", "glue:GetPartitions"} <= actions
    assert {a for a in actions if a.startswith("glue:")} == actions
    assert sorted(a for a in actions if not allows(granted, a)) == []


def _policy_statements(path: Path, name: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        parsed = hcl2.load(fh)
    return [st for data in parsed.get("data", []) for kind, documents in data.items()
            if _unquote(kind) == "aws_iam_policy_document"
            for doc_name, body in documents.items() if _unquote(doc_name) == name
            for st in _statements(body)]


def test_server_access_logging_starts_once_the_log_bucket_grants_it() -> None:
    """The zone buckets log to the access-log bucket only after its policy lets the logging service
    write there. Without the ordering, Terraform may switch logging on first: an emulated account
    (a moto server) refused all five zone buckets' PutBucketLogging that way."""
    with open(S3_ZONES_TF, encoding="utf-8") as fh:
        parsed = hcl2.load(fh)
    resources = {(_unquote(kind), _unquote(name)): body for block in parsed["resource"]
                 for kind, named in block.items() for name, body in named.items()}
    logging = resources[("aws_s3_bucket_logging", "zone")]
    assert logging["target_bucket"] == "${aws_s3_bucket.access_logs.id}"
    assert "${aws_s3_bucket_policy.access_logs}" in logging.get("depends_on", [])
    assert resources[("aws_s3_bucket_policy", "access_logs")]["policy"] == "${data.aws_iam_policy_document.access_logs.json}"
    grants = [st for st in _policy_statements(S3_ZONES_TF, "access_logs") if _unquote(st["effect"]) == "Allow"
              and [_unquote(i) for p in st["principals"] for i in p["identifiers"]] == ["logging.s3.amazonaws.com"]]
    assert len(grants) == 1 and [_unquote(a) for a in grants[0]["actions"]] == ["s3:PutObject"]


def test_the_trigger_role_starts_the_encrypted_state_machine_and_nothing_else() -> None:
    """EventBridge's role starts this state machine only, and since the state machine is
    encrypted with the lake key, may use that key for this state machine's data only."""
    statements = {_unquote(st["sid"]): st for st in _policy_statements(STATE_MACHINE_TF, "events")}
    assert set(statements) == {"StartIngest", "EncryptExecutionInput"}
    def listed(st: dict[str, Any], key: str) -> list[str]:
        return sorted(_unquote(v) for v in st[key])

    start, key = statements["StartIngest"], statements["EncryptExecutionInput"]
    machine = "${aws_sfn_state_machine.this.arn}"
    assert listed(start, "actions") == ["states:StartExecution"] and listed(start, "resources") == [machine]
    assert listed(key, "actions") == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert listed(key, "resources") == ["${var.kms_key_arn}"]
    [condition] = key["condition"]
    assert (_unquote(condition["test"]), _unquote(condition["variable"]), listed(condition, "values")) == (
        "StringEquals", "kms:EncryptionContext:aws:states:stateMachineArn", [machine])
    text = STATE_MACHINE_TF.read_text(encoding="utf-8")
    assert 'type                              = "CUSTOMER_MANAGED_KMS_KEY"' in text  # why the key is needed


def test_every_trigger_rule_has_a_failed_invocations_alarm() -> None:
    """A trigger that cannot start an execution leaves no execution for the state machine's
    alarms to see: each rule the state machine module creates has an alarm of its own."""
    outputs = (STATE_MACHINE_TF.parent / "outputs.tf").read_text(encoding="utf-8")
    rules = re.findall(r"aws_cloudwatch_event_rule\.(\w+)\.name", outputs)
    created = re.findall(r'resource "aws_cloudwatch_event_rule" "(\w+)"', STATE_MACHINE_TF.read_text(encoding="utf-8"))
    assert sorted(rules) == sorted(created) == ["object_created", "schedule"]
    main = (REPO / "terraform" / "main.tf").read_text(encoding="utf-8")
    assert re.search(r"event_rule_names\s*=\s*module\.state_machine\.event_rule_names", main)
    monitoring = (REPO / "terraform" / "modules" / "monitoring" / "main.tf").read_text(encoding="utf-8")
    alarm = re.search(r'resource "aws_cloudwatch_metric_alarm" "trigger_failed" \{(.*?)\n\}', monitoring, re.S)
    assert alarm
    body = alarm.group(1)
    for setting in ("for_each = var.event_rule_names", 'namespace           = "AWS/Events"',
                    'metric_name         = "FailedInvocations"', "dimensions          = { RuleName = each.value }",
                    "alarm_actions       = [var.sns_topic_arn]"):
        assert setting in body, setting


# --------------------------------------------------------------------------- conditions that narrow grants

SNS_TF = REPO / "terraform" / "modules" / "sns_alerts" / "main.tf"


def _conditions(statement: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """A statement's conditions as {(operator, key): sorted values}."""
    return {(_unquote(c["test"]), _unquote(c["variable"])): sorted(_unquote(v) for v in c["values"])
            for c in statement.get("condition", [])}


def _by_sid(path: Path, name: str) -> dict[str, dict[str, Any]]:
    return {_unquote(st["sid"]): st for st in _policy_statements(path, name)}


def _locals(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return {k: v for block in hcl2.load(fh).get("locals", []) for k, v in block.items()}


def test_the_job_deletes_network_interfaces_of_its_own_vpc_only() -> None:
    """ec2:DeleteNetworkInterface has no resource narrower than every ENI of the account and region;
    the action supports the ec2:Vpc condition key, an ARN (Service Authorization Reference, Amazon
    EC2), which confines it to the job's VPC."""
    statements = _by_sid(GLUE_JOB_TF, "job")
    deleting = [sid for sid, st in statements.items()
                if any(fnmatch.fnmatchcase("ec2:DeleteNetworkInterface", _unquote(a)) for a in st["actions"])]
    assert deleting == ["DeleteJobEnis"]
    delete = statements["DeleteJobEnis"]
    assert [_unquote(a) for a in delete["actions"]] == ["ec2:DeleteNetworkInterface"]
    assert _conditions(delete) == {("ArnEquals", "ec2:Vpc"): ["${local.vpc_arn}"]}
    assert _locals(GLUE_JOB_TF)["vpc_arn"] == '"arn:${local.partition}:ec2:${var.region}:${local.account_id}:vpc/${var.vpc_id}"'


def test_the_analysts_use_the_lake_key_only_through_s3_athena_and_glue() -> None:
    """The analysts read SSE-KMS objects and results through S3 and Athena, and an encrypted Data
    Catalog through Glue; the key's other data (tables, topic, secret, logs) stays out of reach."""
    keyed = [st for st in _query_statements() if any(_unquote(a).startswith("kms:") for a in st["actions"])]
    assert [_unquote(st["sid"]) for st in keyed] == ["UseTheLakeKey"]
    assert _conditions(keyed[0]) == {("StringEquals", "kms:ViaService"): sorted(
        f"{service}.${{var.region}}.amazonaws.com" for service in ("s3", "athena", "glue"))}


def test_the_state_machine_uses_the_lake_key_for_its_topic_tables_and_own_data_only() -> None:
    """Each use of the key by the state machine's role is confined: SNS and DynamoDB through
    kms:ViaService, the state machine's own execution data by the encryption context Step Functions
    sets (aws:states:stateMachineArn), the delivery of its execution logs by theirs."""
    statements = _by_sid(STATE_MACHINE_TF, "state_machine")
    keyed = {sid: st for sid, st in statements.items() if any(_unquote(a).startswith("kms:") for a in st["actions"])}
    assert set(keyed) == {"EncryptedTopicAndTables", "OwnExecutionData", "EncryptedExecutionLogs"}
    assert all(_conditions(st) for st in keyed.values()), "every use of the key is conditioned"
    assert _conditions(keyed["EncryptedTopicAndTables"]) == {("StringEquals", "kms:ViaService"): [
        "dynamodb.${local.region}.amazonaws.com", "sns.${local.region}.amazonaws.com"]}
    assert _conditions(keyed["OwnExecutionData"]) == {
        ("StringEquals", "kms:EncryptionContext:aws:states:stateMachineArn"): ["${local.state_machine_arn}"]}
    assert _conditions(keyed["EncryptedExecutionLogs"]) == {
        ("StringLike", "kms:EncryptionContext:SourceArn"): ["arn:${local.partition}:logs:${local.region}:${local.account_id}:*"]}
    assert [_unquote(a) for a in keyed["EncryptedExecutionLogs"]["actions"]] == ["kms:GenerateDataKey"]
    # The services named are those of the tasks that touch encrypted resources.
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text(encoding="utf-8")))
    definition = json.loads(render_definition(dict.fromkeys(placeholders, 1) | {"partition": "aws"}, ASL))
    services = {r.split(":::")[1].split(":")[0] for r in _task_resources(definition)} - {"lambda", "glue"}
    assert services == {"sns", "dynamodb"}
    # The ARN in the condition is the state machine's own (a postcondition checks it at apply).
    assert _locals(STATE_MACHINE_TF)["state_machine_arn"] == (
        '"arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${var.name}"')
    assert "condition     = self.arn == local.state_machine_arn" in STATE_MACHINE_TF.read_text(encoding="utf-8")


#: The actions an SNS topic policy accepts (Amazon SNS, "API permissions: Actions and resources
#: reference"; also those of the default topic policy). "sns:*" is not used: a topic policy that
#: denies sns:* is reported to fail to deploy (cdklabs/cdk-nag#676).
TOPIC_POLICY_ACTIONS = {
    "sns:AddPermission", "sns:DeleteTopic", "sns:GetDataProtectionPolicy", "sns:GetTopicAttributes",
    "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource", "sns:Publish", "sns:PutDataProtectionPolicy",
    "sns:RemovePermission", "sns:SetTopicAttributes", "sns:Subscribe",
}


def test_the_topic_refuses_every_topic_action_over_plain_http() -> None:
    statements = _by_sid(SNS_TF, "topic")
    deny = statements["DenyInsecureTransport"]
    assert _unquote(deny["effect"]) == "Deny"
    assert {_unquote(a) for a in deny["actions"]} == TOPIC_POLICY_ACTIONS
    assert _conditions(deny) == {("Bool", "aws:SecureTransport"): ["false"]}
    [principals] = deny["principals"]
    assert (_unquote(principals["type"]), [_unquote(i) for i in principals["identifiers"]]) == ("*", ["*"])
    allowed = {_unquote(a) for sid, st in statements.items() if sid != "DenyInsecureTransport" for a in st["actions"]}
    assert allowed <= TOPIC_POLICY_ACTIONS, "whatever the topic allows, it refuses over plain HTTP"
