"""The deployed state machine, run on a laptop: moto executes it, the real job does the Glue runs.

This is the one place where the emulator is adapted to run the project's own code:

- moto's Glue ``StartJobRun`` runs the ingest job on the local Spark session and records the
  outcome as the job run's state (SUCCEEDED or FAILED with its error message);
- moto's Lambda ``Invoke`` calls the Python handler of the planner and claim functions in-process
  (moto would need Docker to run them);
- moto 5.2's Step Functions interpreter crashes on ``glue:startJobRun.sync`` (see
  ``_glue_sync_without_callback``); the state machine definition itself is the production one;
- moto answers one request at a time (``one_request_at_a_time``): its state is not safe for the
  threads that the Map's branches and the Glue runs call it from.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from unittest import mock

from pyspark.sql import SparkSession

from .._args import parse_job_args
from .._aws import AwsClients
from .._job import FAILS_A_GLUE_RUN, JobSettings, run_ingest

logger = logging.getLogger(__name__)

MODULE_DIR = Path(__file__).resolve().parents[3] / "terraform" / "modules" / "state_machine"
DEFINITION_FILE = MODULE_DIR / "ingest.asl.json"
PLANNER_FILE = MODULE_DIR / "functions" / "plan_ingest.py"
CLAIM_FILE = MODULE_DIR / "functions" / "claim_dataset.py"
_PLACEHOLDER = re.compile(r"(?<!\$)\$\{([a-z_]+)\}")


#: History events of a Map branch: each turn of its wait for the dataset's lock (the claim, a Lambda
#: task, 5; two choices, a pass and the wait, 2 each), and the rest of a branch that gives up. Counted
#: in moto's history by tests/test_orchestration.py; Terraform's plan warns with the same numbers
#: when the enabled datasets could not all wait out their lock within a history's 25,000 events.
HISTORY_EVENTS_PER_WAIT = 13
HISTORY_EVENTS_OF_A_BRANCH = 27

#: Example values for every placeholder of the definition, as Terraform would pass them for an
#: environment ``dev`` (the account id is AWS's documentation example).
EXAMPLE_VALUES: Mapping[str, Any] = {
    "partition": "aws",
    "planner_function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:datalake-dev-ingest-plan",
    "claim_function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:datalake-dev-ingest-claim",
    "contracts_table": "datalake-dev-contracts", "runs_table": "datalake-dev-runs",
    "glue_job_name": "datalake-dev-ingest", "sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:datalake-dev-alerts",
    "max_concurrency": 4, "glue_retry_interval_seconds": 30, "glue_task_timeout_seconds": 9300,
    "execution_timeout_seconds": 28800, "lock_wait_seconds": 300, "lock_max_waits": 12,
}


def render_definition(values: Mapping[str, Any], path: Path = DEFINITION_FILE) -> str:
    """Fill the definition template as Terraform's ``templatefile`` does (``${name}``).

    Every placeholder must get a value and every value must be used.
    """
    text = path.read_text()
    names = set(_PLACEHOLDER.findall(text))
    missing, unused = names - set(values), set(values) - names
    if missing or unused:
        raise ValueError(f"definition placeholders: missing {sorted(missing)}, unused {sorted(unused)}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def job_default_arguments(settings: JobSettings) -> dict[str, str]:
    """The Glue job's default arguments: every job setting, as the deployment sets them."""
    args = {f"--{f.name}": str(getattr(settings, f.name)) for f in fields(JobSettings)}
    return {**args, "--job-bookmark-option": "job-bookmark-disable"}


@dataclass
class LocalPipeline:
    """The orchestration resources in an emulated account: Glue job, planner and claim Lambdas,
    SNS topic, state machine, each named after ``name`` (the deployment's names differ in their suffixes;
    nothing depends on them)."""

    clients: AwsClients
    settings: JobSettings
    name: str = "datalake-local"
    max_concurrency: int = 2
    glue_retry_interval_seconds: int = 1
    lock_wait_seconds: int = 1
    lock_max_waits: int = 60
    glue_task_timeout_seconds: int = 7200
    execution_timeout_seconds: int = 14400
    state_machine_arn: str = ""
    topic_arn: str = ""
    sqs_queue_url: str = ""

    @property
    def job_name(self) -> str:
        return f"{self.name}-ingest"

    @property
    def raw_bucket(self) -> str:
        return self.settings.raw_uri.rstrip("/").rsplit("/", 1)[-1]

    def deploy(self) -> LocalPipeline:
        c = self.clients
        role = c.client("iam").create_role(
            RoleName=f"{self.name}-orchestration",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": ["states.amazonaws.com", "lambda.amazonaws.com"]}}]}),
        )["Role"]["Arn"]
        self.topic_arn = c.client("sns").create_topic(Name=f"{self.name}-alerts")["TopicArn"]
        # An SQS subscriber stands in for the e-mail subscription, so the alerts can be read back.
        sqs = c.client("sqs")
        self.sqs_queue_url = sqs.create_queue(QueueName=f"{self.name}-alerts-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.sqs_queue_url,
                                             AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        c.client("sns").subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn,
                                  Attributes={"RawMessageDelivery": "true"})
        c.glue.create_job(
            Name=self.job_name, Role=role, GlueVersion="5.1", WorkerType="G.1X", NumberOfWorkers=2,
            Command={"Name": "glueetl", "ScriptLocation": "s3://scripts/glue_ingest_job.py", "PythonVersion": "3"},
            DefaultArguments=job_default_arguments(self.settings),
            ExecutionProperty={"MaxConcurrentRuns": 10}, Timeout=self.glue_task_timeout_seconds // 60,
        )
        lam = c.client("lambda")

        def function(suffix: str, path: Path, environment: dict[str, str]) -> str:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as zf:
                zf.write(path, path.name)
            return str(lam.create_function(
                FunctionName=f"{self.name}-{suffix}", Runtime="python3.12", Role=role,
                Handler=f"{path.stem}.handler", Code={"ZipFile": buffer.getvalue()}, Timeout=30,
                Environment={"Variables": environment},
            )["FunctionArn"])

        planner = function("plan", PLANNER_FILE, {"CONTRACTS_TABLE": self.settings.contracts_table,
                                                  "RAW_BUCKET": self.raw_bucket})
        claim = function("claim", CLAIM_FILE, {"LEDGER_TABLE": self.settings.ledger_table,
                                               "RUNS_TABLE": self.settings.runs_table,
                                               "LEASE_SECONDS": str(self.glue_task_timeout_seconds)})
        definition = render_definition({
            "partition": "aws",  # moto's
            "planner_function_arn": planner, "claim_function_arn": claim,
            "lock_wait_seconds": self.lock_wait_seconds, "lock_max_waits": self.lock_max_waits,
            "contracts_table": self.settings.contracts_table,
            "runs_table": self.settings.runs_table, "glue_job_name": self.job_name,
            "sns_topic_arn": self.topic_arn, "max_concurrency": self.max_concurrency,
            "glue_retry_interval_seconds": self.glue_retry_interval_seconds,
            "glue_task_timeout_seconds": self.glue_task_timeout_seconds,
            "execution_timeout_seconds": self.execution_timeout_seconds,
        })
        self.state_machine_arn = c.client("stepfunctions").create_state_machine(
            name=f"{self.name}-ingest", definition=definition, roleArn=role, type="STANDARD",
        )["stateMachineArn"]
        return self

    def alerts(self) -> list[dict[str, Any]]:
        """Messages published to the alert topic so far (read from the stand-in subscriber)."""
        sqs = self.clients.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.sqs_queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.sqs_queue_url, ReceiptHandle=m["ReceiptHandle"])


@dataclass(frozen=True)
class Execution:
    """A finished execution: status, output or error, and its event history."""

    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.history if e["type"] == event_type]


def run_execution(clients: AwsClients, state_machine_arn: str, payload: Mapping[str, Any],
                  name: str | None = None, timeout_seconds: float = 600,
                  on_event: Callable[[dict[str, Any]], None] | None = None) -> Execution:
    """Start an execution and wait for it, reporting each new history event to ``on_event``."""
    sfn = clients.client("stepfunctions")
    # AWS names every execution (EventBridge too); moto leaves $$.Execution.Name empty without one.
    name = name or f"exec-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout_seconds
    seen = 0
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if on_event:
            for event in history[seen:]:
                on_event(event)
        seen = len(history)
        if desc["status"] != "RUNNING":
            return Execution(arn, desc["status"], json.loads(desc["output"]) if desc.get("output") else None,
                             desc.get("error"), desc.get("cause"), history)
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still running after {timeout_seconds}s")
        time.sleep(0.2)


def _glue_sync_without_callback(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                                state_credentials: Any) -> None:
    """``glue:startJobRun.sync`` for moto 5.2.x's Step Functions interpreter.

    moto 5.2's inherited ``StateTaskServiceCallback._eval_integration_pattern`` ends with
    ``callback_endpoint.interrupt_all()`` in a ``finally`` block, but for services without
    ``.waitForTaskToken`` support (Glue) the endpoint is None, so every ``.sync`` Glue task dies
    with AttributeError. LocalStack, where this interpreter comes from, guards the call. This is
    the same sync evaluation without the callback endpoint; it replaces the method on the Glue
    service class only and only while ``emulated_services`` is active.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )

    task_output = env.stack.pop()
    self.timeout.eval(env=env)
    timeout_seconds = env.stack.pop()
    env.stack.append(task_output)
    build = self._build_sync_resolver if self.resource.condition == ResourceCondition.Sync \
        else self._build_sync2_resolver
    resolver = build(env=env, resource_runtime_part=resource_runtime_part,
                     normalised_parameters=normalised_parameters, state_credentials=state_credentials)
    outcome = self._eval_sync(env=env, sync_resolver=resolver, timeout_seconds=timeout_seconds,
                              callback_endpoint=None, heartbeat_endpoint=None)
    env.stack.append(outcome)


@contextmanager
def env_overlay(values: Mapping[str, str], environ: Any = os.environ) -> Iterator[None]:
    """Set ``values`` in the process environment for a while, then put back only those keys.

    ``mock.patch.dict(os.environ, ...)`` restores by emptying the environment and refilling it,
    and other threads (the Glue runs of other datasets, the interpreter's own tasks) read it
    meanwhile: a boto3 client created in that moment would find no credentials. Here no other key is
    ever removed or rewritten.
    """
    saved = {key: environ.get(key) for key in values}
    environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value


#: Emulated requests that may run alongside others: a Glue ``StartJobRun`` here carries out the
#: whole ingest job, whose own requests must get through meanwhile.
CONCURRENT_REQUESTS = frozenset({"before-send.glue.StartJobRun"})


@contextmanager
def one_request_at_a_time(concurrent: frozenset[str] = CONCURRENT_REQUESTS) -> Iterator[None]:
    """While active, moto answers one in-process request at a time, as AWS answers each atomically.

    moto keeps its state in plain dicts and does not lock them: a DynamoDB ``Query`` walks every
    item of the table, and an item that another thread adds meanwhile (another dataset's ledger
    entry or run record) makes it raise ``RuntimeError: dictionary changed size during
    iteration``. The Map's branches, the Glue runs and the Lambda handlers here all call moto from
    threads of their own. Requests named in ``concurrent`` (botocore's ``before-send`` event names)
    are let through unserialized. The lock is reentrant: a Lambda handler run inside its
    ``Invoke`` makes requests of its own from the same thread.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__
    gate = threading.RLock()

    def call(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if event_name in concurrent:
            return original(stubber, event_name, request, **kwargs)
        with gate:
            return original(stubber, event_name, request, **kwargs)

    with mock.patch.object(BotocoreStubber, "__call__", call):
        yield


@contextmanager
def emulated_services(spark: SparkSession, clients: AwsClients,
                      glue_errors: Mapping[str, list[str]] | None = None,
                      on_progress: Callable[[str, str], None] | None = None) -> Iterator[list[dict[str, Any]]]:
    """While active, Glue job runs and Lambda invocations in moto run the project's real code.

    ``glue_errors`` maps a dataset id to Glue error codes that its next ``StartJobRun`` calls
    raise, one per call (e.g. ``ConcurrentRunsExceededException``), to exercise the retries.
    ``on_progress(dataset_id, message)`` receives the job's progress lines. Yields the list of
    job runs carried out (dataset, run id, status, error). Every other emulated request is
    answered one at a time (``one_request_at_a_time``).
    """
    from moto.awslambda.models import LambdaFunction
    from moto.glue import exceptions as glue_exceptions
    from moto.glue.models import FakeJobRun, GlueBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_glue as sfn_glue,
    )

    pending = {k: list(v) for k, v in (glue_errors or {}).items()}
    runs: list[dict[str, Any]] = []
    pending_lock = threading.Lock()  # Glue starts run unserialized, in the branches' threads
    original_start = GlueBackend.start_job_run

    def start_job_run(backend: Any, name: str, arguments: dict[str, str] | None, *args: Any, **kw: Any) -> str:
        job = backend.get_job(name)
        merged = {**job.default_arguments, **(arguments or {})}
        parsed = parse_job_args([x for kv in merged.items() for x in kv])
        with pending_lock:
            queue = pending.get(parsed.dataset_id)
            code = queue.pop(0) if queue else None
        if code:
            runs.append({"dataset_id": parsed.dataset_id, "run_id": parsed.run_id, "status": "REFUSED",
                         "error": code})
            raise glue_exceptions.GlueClientError(code, f"emulated {code} for {parsed.dataset_id}")
        run_id = original_start(backend, name, arguments, *args, **kw)
        job_run = job.get_job_run(run_id)
        error = None
        try:
            progress = (lambda msg: on_progress(parsed.dataset_id, msg)) if on_progress else None
            result = run_ingest(spark, parsed.dataset_id, parsed.run_id, parsed.settings, clients,
                                on_progress=progress)
            status = "FAILED" if result.status in FAILS_A_GLUE_RUN else "SUCCEEDED"  # as glue_ingest_job.py
            error = result.message if status == "FAILED" else None
        except Exception as exc:
            status, error = "FAILED", f"{type(exc).__name__}: {exc}"
        job_run.status = status
        job_run.error_message = error
        runs.append({"dataset_id": parsed.dataset_id, "run_id": parsed.run_id, "status": status, "error": error})
        return str(run_id)

    original_as_dict = FakeJobRun.as_dict

    def as_dict(run: Any) -> dict[str, Any]:
        out = original_as_dict(run)
        if getattr(run, "error_message", None):
            out["ErrorMessage"] = run.error_message
        return out

    def invoke_lambda(function: Any, event: Any) -> tuple[str, bool, str]:
        module_name, _, func_name = function.handler.rpartition(".")
        spec = importlib.util.spec_from_file_location(module_name, MODULE_DIR / "functions" / f"{module_name}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        # The Invoke request runs under one_request_at_a_time: handlers never overlap each other.
        with env_overlay(function.environment_vars):
            try:
                return json.dumps(getattr(module, func_name)(event, None)), False, ""
            except Exception as exc:
                return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}), True, ""

    with mock.patch.object(GlueBackend, "start_job_run", start_job_run), \
            mock.patch.object(FakeJobRun, "as_dict", as_dict), \
            mock.patch.object(LambdaFunction, "_invoke_lambda", invoke_lambda), \
            mock.patch.object(sfn_glue.StateTaskServiceGlue, "_eval_integration_pattern",
                              _glue_sync_without_callback), \
            one_request_at_a_time():
        yield runs
