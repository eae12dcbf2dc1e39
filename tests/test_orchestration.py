"""The Step Functions definition, executed by moto's interpreter, with the real job behind Glue."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from lake_ingest import AwsClients, Contract, DatasetLocked, StateStore
from lake_ingest._args import REQUIRED_ARGS
from lake_ingest._contract_store import ContractStore
from lake_ingest._state import LOCK_ID
from lake_ingest.local.athena import LocalAthena
from lake_ingest.local.aws_setup import CONTRACTS_DIR, TABLE_KEYS, bootstrap
from lake_ingest.local.orchestration import (
    CLAIM_FILE,
    DEFINITION_FILE,
    EXAMPLE_VALUES,
    HISTORY_EVENTS_OF_A_BRANCH,
    HISTORY_EVENTS_PER_WAIT,
    PLANNER_FILE,
    LocalPipeline,
    emulated_services,
    env_overlay,
    one_request_at_a_time,
    render_definition,
    run_execution,
)
from lake_ingest.local.sample_data import generate_extracts

ROOT = Path(__file__).parents[1]
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
VALUES = dict(EXAMPLE_VALUES)


@pytest.fixture
def pipeline(spark, lake, settings):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients = AwsClients(region_name="eu-west-1")
        bootstrap(clients, settings)
        yield LocalPipeline(clients, settings).deploy()


def contract_doc(name: str) -> dict:
    return yaml.safe_load((CONTRACTS_DIR / f"{name}.yaml").read_text())


def states_entered(execution) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in execution.history if "stateEnteredEventDetails" in e]


def state_output(execution, name: str) -> dict:
    exits = [e["stateExitedEventDetails"] for e in execution.history if "stateExitedEventDetails" in e]
    return json.loads(next(d["output"] for d in exits if d["name"] == name))


def test_schedule_runs_every_dataset(spark, lake, settings, pipeline):
    generate_extracts(lake / "raw", days=2, rows_per_file=300)
    with emulated_services(spark, pipeline.clients) as runs:
        execution = run_execution(pipeline.clients, pipeline.state_machine_arn, {"trigger": "schedule"},
                                  name="nightly-1")
    assert execution.status == "SUCCEEDED", execution.cause
    assert sorted((r["dataset_id"], r["status"]) for r in execution.output["results"]) == [
        ("customers", "SUCCEEDED"), ("meter_readings", "SUCCEEDED"), ("orders", "SUCCEEDED")]
    assert all(r["run_id"] == "nightly-1" for r in runs) and len(runs) == 3
    assert len(execution.events("MapIterationSucceeded")) == 3
    assert states_entered(execution).count("RunIngestJob") == 3
    runs_table = pipeline.clients.dynamodb.scan(TableName=settings.runs_table)["Items"]
    assert sorted((i["dataset_id"]["S"], i["status"]["S"]) for i in runs_table) == [
        ("customers", "SUCCEEDED"), ("meter_readings", "SUCCEEDED"), ("orders", "SUCCEEDED")]
    with LocalAthena(pipeline.clients.glue) as athena:
        assert athena.query("SELECT count(*) > 0 FROM sales.orders WHERE lake_run_id = 'nightly-1'") == [(True,)]
    assert pipeline.alerts() == []


def test_a_failing_dataset_fails_the_execution_and_alerts(spark, lake, settings, pipeline):
    doc = contract_doc("orders")
    doc["quality"][1]["action"] = "fail"  # amount_in_range: the generated data breaks it
    ContractStore(pipeline.clients.dynamodb, settings.contracts_table).put([doc])
    generate_extracts(lake / "raw", days=1, rows_per_file=400)
    with emulated_services(spark, pipeline.clients):
        execution = run_execution(pipeline.clients, pipeline.state_machine_arn, {"trigger": "schedule"},
                                  name="nightly-2")
    assert execution.status == "FAILED" and execution.error == "DatasetsFailed"
    assert execution.cause == ('1 of 3 datasets failed: ["orders"]; their errors are in the Summarise state '
                               'output of the execution history')
    results = state_output(execution, "Summarise")["results"]  # the others went on
    assert {r["dataset_id"]: r["status"] for r in results} == {
        "orders": "FAILED", "customers": "SUCCEEDED", "meter_readings": "SUCCEEDED"}
    record = pipeline.clients.dynamodb.get_item(
        TableName=settings.runs_table, Key={"dataset_id": {"S": "orders"}, "run_id": {"S": "nightly-2"}})["Item"]
    assert record["status"]["S"] == "FAILED" and "amount_in_range" in record["error"]["S"]
    assert record["orchestration_status"]["S"] == "FAILED" and record["orchestration_error"]["S"] == "States.TaskFailed"
    alerts = pipeline.alerts()
    assert [(a["dataset_id"], a["run_id"], a["error"]) for a in alerts] == [("orders", "nightly-2", "States.TaskFailed")]
    assert "DataQualityError" in alerts[0]["cause"]


def test_disabled_dataset_is_skipped(spark, lake, settings, pipeline):
    ContractStore(pipeline.clients.dynamodb, settings.contracts_table).put([{**contract_doc("customers"),
                                                                              "enabled": False}])
    generate_extracts(lake / "raw", days=1, rows_per_file=200)
    with emulated_services(spark, pipeline.clients) as runs:
        execution = run_execution(pipeline.clients, pipeline.state_machine_arn, {"trigger": "schedule"})
    assert execution.status == "SUCCEEDED"
    assert {r["dataset_id"]: r["status"] for r in execution.output["results"]}["customers"] == "SKIPPED_DISABLED"
    assert sorted(r["dataset_id"] for r in runs) == ["meter_readings", "orders"]


def test_glue_concurrency_limit_is_retried(spark, lake, settings, pipeline):
    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["orders"])
    event = {"trigger": "s3", "bucket": "raw", "object_key": "erp/orders/orders_2026-11-01.csv.gz"}
    with emulated_services(spark, pipeline.clients,
                           glue_errors={"orders": ["ConcurrentRunsExceededException", "ThrottlingException"]}) as runs:
        execution = run_execution(pipeline.clients, pipeline.state_machine_arn, event)
    assert execution.status == "SUCCEEDED"
    assert [r["status"] for r in runs] == ["REFUSED", "REFUSED", "SUCCEEDED"]
    failed = [json.loads(json.dumps(e["taskFailedEventDetails"])) for e in execution.events("TaskFailed")]
    assert [f["error"] for f in failed] == ["Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException"]
    assert states_entered(execution).count("RecordFailure") == 0


def test_object_event_runs_only_the_matching_dataset(spark, lake, settings, pipeline):
    generate_extracts(lake / "raw", days=1, rows_per_file=200)
    event = {"trigger": "s3", "bucket": "raw", "object_key": "crm/customers/customers_2026-11-01.jsonl.gz"}
    with emulated_services(spark, pipeline.clients) as runs:
        execution = run_execution(pipeline.clients, pipeline.state_machine_arn, event)
        stray = run_execution(pipeline.clients, pipeline.state_machine_arn,
                              {"trigger": "s3", "bucket": "raw", "object_key": "erp/readme.txt"})
    assert execution.status == "SUCCEEDED" and [r["dataset_id"] for r in runs] == ["customers"]
    assert stray.status == "SUCCEEDED" and "IngestDatasets" not in states_entered(stray)


# ------------------------------------------------------------------------- the definition itself


def _lock(clients, settings, dataset_id: str) -> dict | None:
    return StateStore(clients.dynamodb, settings.ledger_table, settings.runs_table).get_run(dataset_id, LOCK_ID)


def test_an_object_already_read_starts_no_glue_run(spark, lake, settings, pipeline):
    """A burst: the first execution's run reads every file present; the executions of the other
    files then find their file in the ledger and end without a Glue run."""
    generate_extracts(lake / "raw", days=2, rows_per_file=100, datasets=["orders"])
    first, second = sorted(p.relative_to(lake / "raw").as_posix() for p in (lake / "raw").rglob("*.csv.gz"))
    etag = {k: hashlib.md5((lake / "raw" / k).read_bytes()).hexdigest() for k in (first, second)}
    with emulated_services(spark, pipeline.clients) as runs:
        one = run_execution(pipeline.clients, pipeline.state_machine_arn,
                            {"trigger": "s3", "bucket": "raw", "object_key": first, "etag": etag[first]})
        two = run_execution(pipeline.clients, pipeline.state_machine_arn,
                            {"trigger": "s3", "bucket": "raw", "object_key": second, "etag": etag[second]})
        changed = run_execution(pipeline.clients, pipeline.state_machine_arn,
                                {"trigger": "s3", "bucket": "raw", "object_key": second, "etag": "0" * 32})
    assert one.status == two.status == changed.status == "SUCCEEDED"
    # one Glue run for both files; a replaced file (another ETag) is not skipped
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    assert [r["dataset_id"] for r in runs] == ["orders", "orders"]
    assert "RunIngestJob" in states_entered(one) and "RunIngestJob" not in states_entered(two)
    assert two.output["results"] == [{"dataset_id": "orders", "status": "SKIPPED_ALREADY_INGESTED",
                                      "reason": f"{second} is already recorded INGESTED by run {one.arn.rsplit(':', 1)[-1]}"}]
    assert "RunIngestJob" in states_entered(changed)
    assert _lock(pipeline.clients, settings, "orders") is None


def test_a_locked_dataset_waits_for_the_lock_instead_of_starting_a_run(spark, lake, settings, pipeline):
    generate_extracts(lake / "raw", days=1, rows_per_file=100, datasets=["orders"])
    # another run holds the lock for three more seconds; the branch waits (1 s here), then runs
    pipeline.clients.dynamodb.put_item(TableName=settings.runs_table, Item={
        "dataset_id": {"S": "orders"}, "run_id": {"S": LOCK_ID}, "holder": {"S": "other-run"},
        "expires_at": {"N": str(int(time.time()) + 3)}})
    with emulated_services(spark, pipeline.clients) as runs:
        execution = run_execution(pipeline.clients, pipeline.state_machine_arn,
                                  {"trigger": "schedule", "dataset_ids": ["orders"]})
    assert execution.status == "SUCCEEDED"
    entered = states_entered(execution)
    assert entered.count("WaitForLock") >= 2 and entered.index("WaitForLock") < entered.index("RunIngestJob")
    assert [r["status"] for r in runs] == ["SUCCEEDED"]  # no run ended LOCKED
    assert _lock(pipeline.clients, settings, "orders") is None


def test_a_branch_waits_a_bounded_number_of_times(spark, lake, settings, pipeline):
    """A lock held for long (a dead run's lease) ends the branch SKIPPED_LOCKED after
    lock_max_waits waits, instead of holding a Map slot until the execution times out."""
    impatient = LocalPipeline(pipeline.clients, settings, name="impatient", lock_max_waits=2).deploy()
    pipeline.clients.dynamodb.put_item(TableName=settings.runs_table, Item={
        "dataset_id": {"S": "orders"}, "run_id": {"S": LOCK_ID}, "holder": {"S": "dead-run"},
        "expires_at": {"N": str(int(time.time()) + 3600)}})
    with emulated_services(spark, pipeline.clients) as runs:
        execution = run_execution(pipeline.clients, impatient.state_machine_arn,
                                  {"trigger": "schedule", "dataset_ids": ["orders"]})
    assert execution.status == "SUCCEEDED" and runs == []
    assert states_entered(execution).count("WaitForLock") == 2
    # The history events a turn of the wait adds, and the rest of the branch (README.md, Limitations;
    # Terraform's plan warning): Step Functions caps a history at 25,000 events.
    claims = [i for i, e in enumerate(execution.history)
              if e.get("stateEnteredEventDetails", {}).get("name") == "ClaimDataset"]
    assert len(claims) == 3 and claims[2] - claims[1] == claims[1] - claims[0] == HISTORY_EVENTS_PER_WAIT
    turn = [e["type"] for e in execution.history[claims[0]:claims[1]]]
    assert turn.count("TaskScheduled") == 1 and turn.count("WaitStateEntered") == 1
    branch = [e["type"] for e in execution.history]
    branch = branch[branch.index("MapIterationStarted"):branch.index("MapIterationSucceeded") + 1]
    assert len(branch) == HISTORY_EVENTS_OF_A_BRANCH + HISTORY_EVENTS_PER_WAIT * 2
    assert execution.output["results"] == [{"dataset_id": "orders", "status": "SKIPPED_LOCKED",
                                            "reason": "locked by run dead-run"}]
    assert _lock(pipeline.clients, settings, "orders")["holder"] == "dead-run"  # not ours to release
    [alert] = impatient.alerts()  # the execution succeeds, so the long-held lock is announced
    assert (alert["dataset_id"], alert["error"]) == ("orders", "DatasetLocked")
    assert alert["cause"] == "gave up waiting for the lock after 3 tries: locked by run dead-run"

    # without its alert the give-up would pass unseen: the execution fails instead
    pipeline.clients.client("sns").delete_topic(TopicArn=impatient.topic_arn)
    with emulated_services(spark, pipeline.clients):
        unannounced = run_execution(pipeline.clients, impatient.state_machine_arn,
                                    {"trigger": "schedule", "dataset_ids": ["orders"]})
    assert unannounced.status == "FAILED"
    assert unannounced.cause.startswith('1 of 1 datasets failed: ["orders"]')
    [result] = state_output(unannounced, "Summarise")["results"]  # the reasons stay in the history
    assert (result["status"], result["error"], result["alert_error"]) == ("FAILED", "DatasetLocked",
                                                                         "SNS.NotFoundException")


def test_a_claim_that_fails_after_taking_the_lock_releases_it(spark, lake, settings, pipeline):
    """The answer of a claim can be lost after its write went through (a timeout): the failure
    path releases a lock held in the execution's name, and records and announces the failure."""
    lam = pipeline.clients.client("lambda")
    lam.update_function_configuration(FunctionName=f"{pipeline.name}-claim", Environment={"Variables": {
        "LEDGER_TABLE": settings.ledger_table, "RUNS_TABLE": settings.runs_table, "LEASE_SECONDS": "broken"}})
    pipeline.clients.dynamodb.put_item(TableName=settings.runs_table, Item={
        "dataset_id": {"S": "orders"}, "run_id": {"S": LOCK_ID}, "holder": {"S": "lost-answer"},
        "expires_at": {"N": str(int(time.time()) + 7200)}})
    with emulated_services(spark, pipeline.clients) as runs:
        execution = run_execution(pipeline.clients, pipeline.state_machine_arn,
                                  {"trigger": "schedule", "dataset_ids": ["orders"]}, name="lost-answer")
    assert execution.status == "FAILED" and runs == []
    entered = states_entered(execution)
    assert entered.index("ClaimDataset") < entered.index("ReleaseLock") < entered.index("RecordFailure")
    assert _lock(pipeline.clients, settings, "orders") is None
    assert [a["dataset_id"] for a in pipeline.alerts()] == ["orders"]


class RecordingEnviron(dict):
    """A stand-in for ``os.environ`` that records every key written or removed."""

    def __init__(self, *args):
        super().__init__(*args)
        self.touched: list[str] = []

    def __setitem__(self, key, value):
        self.touched.append(key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.touched.append(key)
        super().__delitem__(key)

    def update(self, *args, **kw):
        for key, value in dict(*args, **kw).items():
            self[key] = value

    def pop(self, key, *default):
        if key in self:
            self.touched.append(key)
        return super().pop(key, *default)

    def clear(self):
        self.touched.extend(self)
        super().clear()


def test_a_function_environment_is_laid_over_without_emptying_the_process_one():
    """Lambda handlers run in-process with their variables set, while the Glue runs of other
    datasets read the same environment: no key but the function's may disappear meanwhile."""
    environ = RecordingEnviron({"AWS_ACCESS_KEY_ID": "testing", "RUNS_TABLE": "outer", "HOME": "/root"})
    with env_overlay({"RUNS_TABLE": "runs", "LEASE_SECONDS": "60"}, environ):
        assert environ == {"AWS_ACCESS_KEY_ID": "testing", "RUNS_TABLE": "runs", "LEASE_SECONDS": "60",
                           "HOME": "/root"}
    assert environ == {"AWS_ACCESS_KEY_ID": "testing", "RUNS_TABLE": "outer", "HOME": "/root"}
    assert set(environ.touched) == {"RUNS_TABLE", "LEASE_SECONDS"}
    # what the overlay replaces: patch.dict empties the mapping on the way out, credentials included
    environ.touched.clear()
    with mock.patch.dict(environ, {"RUNS_TABLE": "runs"}):
        pass
    assert "AWS_ACCESS_KEY_ID" in environ.touched

    with pytest.raises(RuntimeError), env_overlay({"LEASE_SECONDS": "60"}, environ):
        raise RuntimeError("the handler failed")
    assert "LEASE_SECONDS" not in environ


class PausingHashSet(dict):
    """One dataset's items in moto's table. Walking them pauses after the first item until
    ``resume`` is set (or half a second has passed), with ``inside`` set meanwhile."""

    def __init__(self, items: dict, inside: threading.Event, resume: threading.Event) -> None:
        super().__init__(items)
        self.inside, self.resume = inside, resume

    def values(self):
        def walk(view):
            for n, value in enumerate(view):
                yield value
                if n == 0:
                    self.inside.set()
                    self.resume.wait(0.5)
        return walk(super().values())


def _query_while_another_dataset_starts_a_run(aws, settings) -> tuple[list[str], list[BaseException]]:
    """customers' runs are read while orders gets a new run record, which lands while moto walks
    the table (a Query walks every item, orders' too). Returns the run ids read and the errors."""
    state = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    state.start_run("customers", "run-1", {})
    state.start_run("orders", "run-1", {})
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].tables[settings.runs_table]
    orders = next(key for key in table.items if key.value == "orders")
    inside, resume = threading.Event(), threading.Event()
    table.items[orders] = PausingHashSet(table.items[orders], inside, resume)
    read: list[str] = []
    errors: list[BaseException] = []

    def reader():
        try:
            read.extend(r["run_id"] for r in state.runs("customers"))
        except Exception as exc:  # the error is what the caller checks
            errors.append(exc)

    def writer():
        inside.wait(5)
        state.start_run("orders", "run-2", {})
        resume.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a request never came back"
    assert inside.is_set(), "the query did not walk orders' items"
    assert {r["run_id"] for r in state.runs("orders")} == {"run-1", "run-2"}
    return read, errors


def test_moto_fails_a_query_that_another_thread_writes_into(aws, deployed, settings):
    """What ``one_request_at_a_time`` is for: moto's own behaviour when two threads call it."""
    read, errors = _query_while_another_dataset_starts_a_run(aws, settings)
    assert [str(e) for e in errors] == ["dictionary changed size during iteration"]
    assert read == []


def test_emulated_requests_are_answered_one_at_a_time(aws, deployed, settings):
    with one_request_at_a_time():
        read, errors = _query_while_another_dataset_starts_a_run(aws, settings)
    assert errors == []
    assert read == ["run-1"]


def test_a_glue_start_lets_other_requests_through_and_a_request_may_make_its_own(aws):
    """A Glue start carries out the whole job, whose requests come from other threads too; a
    Lambda handler makes its requests from inside its ``Invoke``, on the same thread."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.glue.models import GlueBackend

    seen: dict[str, bool] = {}

    def start_job_run(backend, name, *args, **kwargs):
        other = threading.Thread(target=aws.client("dynamodb").list_tables)
        other.start()
        other.join(5)
        seen["another thread's request answered during the start"] = not other.is_alive()
        return "jr_1"

    original_list_tables = DynamoDBBackend.list_tables

    def list_tables(backend, *args, **kwargs):
        seen["a request made inside a request answered"] = bool(aws.client("sts").get_caller_identity()["Account"])
        return original_list_tables(backend, *args, **kwargs)

    with mock.patch.object(GlueBackend, "start_job_run", start_job_run), \
            mock.patch.object(DynamoDBBackend, "list_tables", list_tables), one_request_at_a_time():
        assert aws.client("glue").start_job_run(JobName="any")["JobRunId"] == "jr_1"
    assert seen == {"another thread's request answered during the start": True,
                    "a request made inside a request answered": True}


def test_the_claim_is_one_the_job_accepts_and_other_runs_do_not(aws, deployed, settings):
    claim = _function(CLAIM_FILE)
    ddb = aws.dynamodb
    event = {"dataset_id": "orders", "run_id": "exec-1"}
    assert claim.claim(event, settings.ledger_table, settings.runs_table, 600, ddb)["action"] == "run"
    state = StateStore(ddb, settings.ledger_table, settings.runs_table)
    with state.dataset_lock("orders", "exec-1", 600):  # the job of the same run takes it again
        pass
    assert claim.claim(event, settings.ledger_table, settings.runs_table, 600, ddb)["action"] == "run"
    with pytest.raises(DatasetLocked, match="locked by run exec-1"), state.dataset_lock("orders", "exec-2", 600):
        pass
    assert claim.claim({**event, "run_id": "exec-2"}, settings.ledger_table, settings.runs_table, 600, ddb) == {
        "action": "wait", "reason": "locked by run exec-1"}
    later = time.time() + 601  # an expired claim (a dead execution) is taken over
    assert claim.claim({**event, "run_id": "exec-2"}, settings.ledger_table, settings.runs_table, 600, ddb,
                       now=later)["action"] == "run"
    for bad, message in (([], "JSON object"), ({"run_id": "x"}, "dataset_id must be"),
                         ({**event, "etag": 7}, "etag must be")):
        with pytest.raises(claim.BadClaim, match=message):
            claim.claim(bad, settings.ledger_table, settings.runs_table, 600, ddb)


@pytest.mark.parametrize("key", ["erp/orders/orders_2026-11-01.csv.gz",
                                 "erp/orders/" + "deep/" * 200 + "orders_2026-11-01.csv.gz"])
def test_the_claim_finds_the_ledger_entry_the_job_writes(aws, deployed, settings, key):
    """Short keys and keys too long for a DynamoDB sort key (then hashed) alike: the claim
    looks up the ledger item the job recorded for the object."""
    from lake_ingest._state import MAX_FILE_ID_BYTES, LedgerEntry, file_id

    claim = _function(CLAIM_FILE)
    etag = "0123456789abcdef0123456789abcdef-12"
    assert claim.file_id(key, etag) == file_id(key, etag)
    assert len(file_id(key, etag).encode()) <= MAX_FILE_ID_BYTES == claim.MAX_FILE_ID_BYTES
    state = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    assert state.record_file("orders", LedgerEntry(file_id(key, etag), key, etag, 10, "INGESTED", "run-0"))
    event = {"dataset_id": "orders", "run_id": "exec-1", "object_key": key, "etag": etag}
    assert claim.claim(event, settings.ledger_table, settings.runs_table, 600, aws.dynamodb)["action"] == "skip"
    assert state.ledger("orders")[file_id(key, etag)].key == key


def test_definition_placeholders_are_all_filled():
    rendered = json.loads(render_definition(VALUES))
    assert rendered["States"]["IngestDatasets"]["MaxConcurrency"] == 4
    with pytest.raises(ValueError, match="missing"):
        render_definition({k: v for k, v in VALUES.items() if k != "glue_job_name"})
    with pytest.raises(ValueError, match="unused"):
        render_definition({**VALUES, "surplus": 1})


def _states(node: dict) -> dict:
    out = dict(node["States"])
    for state in node["States"].values():
        if "ItemProcessor" in state:
            out.update(_states(state["ItemProcessor"]))
    return out


def test_every_task_has_a_timeout_and_glue_gets_the_job_arguments():
    states = _states(json.loads(render_definition(VALUES)))
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert tasks and all("TimeoutSeconds" in s for s in tasks.values())
    glue = tasks["RunIngestJob"]
    assert glue["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert {k.removeprefix("--").removesuffix(".$") for k in glue["Parameters"]["Arguments"]} == set(REQUIRED_ARGS)
    retried = {e for r in glue["Retry"] for e in r["ErrorEquals"]}
    # AWS raises throttling as AWSGlueException (not a modelled error of StartJobRun); moto by its code
    assert {"Glue.ConcurrentRunsExceededException", "Glue.AWSGlueException", "Glue.ThrottlingException"} <= retried
    assert all(r["BackoffRate"] > 1 for r in glue["Retry"])
    # success or failure, the run's lock is released before the outcome is recorded
    assert glue["Catch"][0]["Next"] == glue["Next"] == "ReleaseLock"
    assert tasks["ReleaseLock"]["Parameters"]["ConditionExpression"] == "attribute_not_exists(holder) OR holder = :me"
    for task in ("RecordFailure", "ReleaseLock"):
        assert set(tasks[task]["Parameters"]["Key"]) == {a for a, _ in TABLE_KEYS["runs_table"]}
    assert set(tasks["ReadContract"]["Parameters"]["Key"]) == {a for a, _ in TABLE_KEYS["contracts_table"]}


@pytest.mark.skipif(not ASL_VALIDATOR.exists(), reason="asl-validator is installed by scripts/setup.sh (npm, with Node 20.16 or later)")
def test_asl_validator_accepts_the_definition_and_rejects_a_broken_one(tmp_path):
    good = tmp_path / "ingest.json"
    good.write_text(render_definition(VALUES))
    ok = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = json.loads(good.read_text())
    broken["States"]["PlanDatasets"]["Next"] = "NoSuchState"
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    assert subprocess.run([str(ASL_VALIDATOR), "--json-path", str(bad)], capture_output=True).returncode != 0


def test_definition_is_the_one_terraform_deploys():
    """Terraform fills exactly the placeholders that the definition has (and these tests fill)."""
    main_tf = (DEFINITION_FILE.parent / "main.tf").read_text()
    start = main_tf.index('templatefile("${path.module}/ingest.asl.json", {')
    body = main_tf[start:main_tf.index("\n  })", start)]
    passed = re.findall(r"^\s+([a-z_]+)\s+=", body, re.M)
    assert sorted(passed) == sorted(VALUES)
    assert set(re.findall(r"\$\{([a-z_]+)\}", DEFINITION_FILE.read_text())) == set(VALUES)


# ------------------------------------------------------------------------------ the planner Lambda


def _planner():
    return _function(PLANNER_FILE)


def _function(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("key", [
    "erp/orders/orders_2026-11-01.csv.gz", "erp/orders/orders_2026-11-01.csv", "erp/orders/sub/orders_1.csv.gz",
    "erp/orders/", "crm/customers/customers_x.jsonl.gz", "plant/meter_readings/readings_1.parquet",
    "plant/meter_readings/readings_1.parquet.tmp", "other/orders_1.csv.gz",
])
def test_planner_matches_like_the_job(key):
    planner = _planner()
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        expected = Contract.from_dict(doc).source.matches(key)
        assert planner.source_matches(doc["source"], "raw-bucket", key, "raw-bucket") is expected, (path.name, key)
        assert planner.source_matches(doc["source"], "other-bucket", key, "raw-bucket") is False


@pytest.mark.parametrize(("event", "message"), [
    ({"dataset_ids": "orders"}, "dataset_ids must be a non-empty list of dataset ids, got 'orders'"),
    ({"dataset_ids": []}, "dataset_ids must be a non-empty list of dataset ids, got []"),
    ({"dataset_ids": ["orders", "nope"]}, "dataset_ids names datasets without a contract: nope"),
    ({"trigger": "s3", "bucket": "lake-raw", "object_key": ""}, "an S3 trigger needs the object's key"),
    ({"trigger": "s3", "bucket": "lake-raw", "object_key": None}, "an S3 trigger needs the object's key"),
    ({"trigger": "s3", "object_key": 5}, "got 5"),
    (["orders"], "the execution input must be a JSON object, got list"),
    ("orders", "the execution input must be a JSON object, got str"),
])
def test_planner_refuses_inputs_it_cannot_act_on(aws, deployed, settings, monkeypatch, event, message):
    """Before, these planned nothing (and the execution ended 'Done'), everything, or failed with
    an AttributeError."""
    planner = _planner()
    monkeypatch.setenv("CONTRACTS_TABLE", settings.contracts_table)
    monkeypatch.setenv("RAW_BUCKET", "lake-raw")
    with pytest.raises(planner.BadTrigger) as info:
        planner.handler(event)
    assert message in str(info.value)


def test_planner_plans_the_datasets_asked_for_or_every_enabled_one(aws, deployed, settings, monkeypatch):
    planner = _planner()
    monkeypatch.setenv("CONTRACTS_TABLE", settings.contracts_table)
    monkeypatch.setenv("RAW_BUCKET", "lake-raw")
    assert planner.handler({"dataset_ids": ["orders"]})["datasets"] == ["orders"]
    assert planner.handler(None)["datasets"] == planner.handler({})["datasets"] == [
        "customers", "meter_readings", "orders"]


def test_planner_reads_contracts_from_dynamodb(aws, deployed, settings, monkeypatch):
    planner = _planner()
    monkeypatch.setenv("CONTRACTS_TABLE", settings.contracts_table)
    monkeypatch.setenv("RAW_BUCKET", "lake-raw")
    assert planner.handler({"trigger": "schedule"})["datasets"] == ["customers", "meter_readings", "orders"]
    event = {"trigger": "s3", "bucket": "lake-raw", "object_key": "plant/meter_readings/readings_2026-11-01.parquet"}
    assert planner.handler(event)["datasets"] == ["meter_readings"]
    assert planner.handler({**event, "bucket": "elsewhere"})["datasets"] == []


@pytest.mark.parametrize("document", ["not json", '["orders"]', '{"source": "raw"}', '{"source": null}', "42"])
def test_a_damaged_contract_item_does_not_stop_the_planner(aws, deployed, settings, monkeypatch, document):
    """A contract item whose document is not a JSON object with a source object runs on schedule
    (the job then reports the contract) and matches no S3 object; the other datasets plan as ever.
    A document that was JSON but not an object used to fail every execution."""
    aws.dynamodb.put_item(TableName=settings.contracts_table,
                          Item={"dataset_id": {"S": "damaged"}, "document": {"S": document}})
    planner = _planner()
    monkeypatch.setenv("CONTRACTS_TABLE", settings.contracts_table)
    monkeypatch.setenv("RAW_BUCKET", "lake-raw")
    assert planner.handler({"trigger": "schedule"})["datasets"] == ["customers", "damaged", "meter_readings", "orders"]
    event = {"trigger": "s3", "bucket": "lake-raw", "object_key": "plant/meter_readings/readings_2026-11-01.parquet"}
    assert planner.handler(event)["datasets"] == ["meter_readings"]


@pytest.mark.parametrize(("given", "stored"), [
    ("plant/meter_readings/readings_2026-11-01%2Bnight.parquet", "plant/meter_readings/readings_2026-11-01+night.parquet"),
    ("plant/meter_readings/readings_late+copy.parquet", "plant/meter_readings/readings_late copy.parquet"),
    ("plant/meter%5Freadings/readings_1.parquet", "plant/meter_readings/readings_1.parquet"),
])
def test_a_url_encoded_key_is_planned_and_skipped_as_the_stored_one(aws, deployed, settings, monkeypatch, given,
                                                                     stored):
    """Whether EventBridge URL-encodes the key (as S3's other notifications do) is not documented:
    the planner and the claim accept it either way."""
    from lake_ingest._state import LedgerEntry, file_id

    planner, claim = _planner(), _function(CLAIM_FILE)
    monkeypatch.setenv("CONTRACTS_TABLE", settings.contracts_table)
    monkeypatch.setenv("RAW_BUCKET", "lake-raw")
    assert planner.key_forms(given) == [given, stored]
    for key in (given, stored):
        planned = planner.handler({"trigger": "s3", "bucket": "lake-raw", "object_key": key, "etag": "e1"})
        assert planned["datasets"] == ["meter_readings"], key
    event = {"dataset_id": "meter_readings", "run_id": "exec-1", "object_key": given, "etag": "e1"}
    state = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    assert state.record_file("meter_readings", LedgerEntry(file_id(stored, "e1"), stored, "e1", 10, "INGESTED", "r0"))
    decision = claim.claim(event, settings.ledger_table, settings.runs_table, 600, aws.dynamodb)
    assert decision == {"action": "skip", "reason": f"{stored} is already recorded INGESTED by run r0"}
    assert claim.claim({**event, "etag": "e2"}, settings.ledger_table, settings.runs_table, 600,
                       aws.dynamodb)["action"] == "run"  # another delivery of the key
