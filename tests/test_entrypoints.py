"""The Glue entry script and the local command take the same arguments and run the same job."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from lake_ingest._args import REQUIRED_ARGS, parse_job_args
from lake_ingest._state import StateStore
from lake_ingest.local.sample_data import generate_extracts

ENTRY = Path(__file__).parents[1] / "glue_jobs" / "glue_ingest_job.py"


def job_argv(settings, run_id="r1", dataset="orders"):
    return ["--dataset_id", dataset, "--run_id", run_id, "--raw_uri", settings.raw_uri,
            "--curated_uri", settings.curated_uri, "--quarantine_uri", settings.quarantine_uri,
            "--lock_lease_seconds", "600"]


def test_parse_ignores_glue_extras(settings, capsys):
    args = parse_job_args([*job_argv(settings), "--JOB_NAME", "ingest", "--job-bookmark-option",
                           "job-bookmark-disable", "--TempDir", "s3://tmp/", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1",
                           "--conf", "spark.sql.shuffle.partitions=8", "--enable-metrics", "true",
                           "--scriptLocation", "s3://scripts/x.py", "--job-language", "python",
                           "--encryption-type", "sse-s3", "--enable-glue-datacatalog", "true"])
    assert (args.dataset_id, args.run_id) == ("orders", "r1")
    assert args.settings.curated_uri == settings.curated_uri and args.settings.max_files_per_run == 500
    with pytest.raises(SystemExit) as stop:
        parse_job_args(["--run_id", "r1"])
    assert stop.value.code == 2 and "--dataset_id" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--ledger-table", "prod-ledger"], "unknown argument --ledger-table: did you mean --ledger_table?"),
    (["--ledger_tabel", "prod-ledger"], "unknown argument --ledger_tabel"),
    (["--max", "3"], "unknown argument --max"),  # no abbreviations
    (["--lock_lease_seconds", "0"], "--lock_lease_seconds must be at least 30"),
    (["--max_files_per_run", "0"], "--max_files_per_run must be at least 1"),
    (["--aws_region", "Ireland"], "--aws_region 'Ireland' is not a region name such as eu-west-1"),
])
def test_parse_refuses_what_would_silently_change_a_setting(settings, capsys, extra, message):
    with pytest.raises(SystemExit) as info:
        parse_job_args([*job_argv(settings), *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("dataset", "run_id", "message"), [
    ("", "r1", "--dataset_id '' must match"),
    ("Orders", "r1", "--dataset_id 'Orders' must match"),
    ("orders", "a/b", "--run_id 'a/b' must match"),
    ("orders", "12:30", "--run_id '12:30' must match"),
])
def test_bad_ids_are_refused_before_spark_starts(settings, capsys, dataset, run_id, message):
    with pytest.raises(SystemExit):
        parse_job_args(job_argv(settings, run_id=run_id, dataset=dataset))
    assert message in capsys.readouterr().err


def test_entry_script_imports_awsglue_only_inside_main():
    source = ENTRY.read_text()
    top_level = source.split("def main(")[0]
    assert "awsglue" not in top_level
    for path in (Path(__file__).parents[1] / "glue_jobs" / "lake_ingest").rglob("*.py"):
        assert "awsglue" not in path.read_text(), path


def _fake_awsglue(spark, calls):
    """Stand-ins for the awsglue modules, which exist only on Glue."""
    glue = types.ModuleType("awsglue")
    context, job, utils = (types.ModuleType(f"awsglue.{n}") for n in ("context", "job", "utils"))

    class GlueContext:
        def __init__(self, sc):
            self.spark_session = spark

    class Job:
        def __init__(self, ctx):
            pass

        def init(self, name, args):
            calls.append(("init", name, dict(args)))

        def commit(self):
            calls.append(("commit",))

    def get_resolved_options(argv, names):
        out = {}
        for name in names:
            flag = f"--{name}"
            if flag not in argv:
                raise SystemExit(f"missing {flag}")
            out[name] = argv[argv.index(flag) + 1]
        return out

    context.GlueContext, job.Job, utils.getResolvedOptions = GlueContext, Job, get_resolved_options
    return {"awsglue": glue, "awsglue.context": context, "awsglue.job": job, "awsglue.utils": utils}


def test_glue_entry_runs_the_job(spark, aws, deployed, lake, settings, monkeypatch, capsys):
    generate_extracts(lake / "raw", days=1, rows_per_file=300, datasets=["orders"])
    calls: list = []
    for name, module in _fake_awsglue(spark, calls).items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("glue_ingest_job", ENTRY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # Glue is not documented to set it: the deployment passes the region
    module.main(["glue_ingest_job.py", "--JOB_NAME", "lake-ingest", *job_argv(settings, "jr_0123"),
                 "--aws_region", "eu-west-1"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["status"] == "SUCCEEDED" and printed["run_id"] == "jr_0123" and printed["rows_read"] == 300
    assert calls[0][0] == "init" and calls[0][2]["dataset_id"] == "orders" and calls[-1] == ("commit",)
    assert set(REQUIRED_ARGS) <= set(calls[0][2])

    # a run that finds the dataset locked did nothing: the Glue run fails, so that it is seen
    calls.clear()
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    with store.dataset_lock("orders", "other", 600), pytest.raises(RuntimeError, match="locked by run other"):
        module.main(["glue_ingest_job.py", "--JOB_NAME", "lake-ingest", *job_argv(settings, "jr_0124"),
                     "--aws_region", "eu-west-1"])
    assert ("commit",) not in calls


def test_local_cli_runs_the_job(spark, aws, deployed, lake, settings, monkeypatch, capsys):
    from lake_ingest import cli

    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["customers"])
    monkeypatch.setattr(cli, "local_spark", lambda: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)  # the session is shared by the test run
    assert cli.main(job_argv(settings, "cli-1", "customers")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "SUCCEEDED" and out["rows_read"] == 200


def test_local_cli_says_what_stops_it_without_a_traceback(spark, aws, deployed, lake, settings, monkeypatch,
                                                           capsys, tmp_path):
    """A contract that is not there, an option the command does not know (Glue's own are refused
    too: Glue does not call this command) and a raw zone that does not exist (a mistyped path,
    which used to succeed with 'nothing new') each end with a message; a failed run prints its
    result as JSON."""
    from lake_ingest import cli
    from lake_ingest.local import aws_setup

    monkeypatch.setattr(cli, "local_spark", lambda: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)
    assert cli.main(job_argv(settings, "cli-1", "nope")) == 2
    err = capsys.readouterr().err
    assert err.startswith("lake-ingest: ") and "nope" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as info:
        cli.main([*job_argv(settings, "cli-1"), "--dry-run"])
    assert info.value.code == 2 and "unrecognized arguments: --dry-run" in capsys.readouterr().err

    typo = str(lake / "rwa")
    assert cli.main([*job_argv(settings, "cli-2"), "--raw_uri", typo]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "FAILED" and f"{typo} is not a directory" in out["message"]

    assert aws_setup.main(["--endpoint-url", "http://127.0.0.1:1", "--contracts-dir", str(tmp_path / "none")]) == 2
    assert f"{tmp_path / 'none'} is not a directory" in capsys.readouterr().err


def test_local_cli_refuses_empty_zones_and_makes_local_ones_absolute(settings, monkeypatch, tmp_path, capsys):
    """An empty zone (an unset shell variable) was read as the working directory; a relative one
    was written into the catalog as it was given, to be read from wherever the reader stands."""
    from lake_ingest._args import parse_job_args

    argv = job_argv(settings, "cli-1")
    for name, value, said in (("--raw_uri", "", "--raw_uri is empty"), ("--curated_uri", " ", "--curated_uri is empty"),
                              ("--quarantine_uri", "s3:///q", "names no bucket")):
        with pytest.raises(SystemExit) as info:
            parse_job_args([*argv, name, value])
        assert info.value.code == 2 and said in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    args = parse_job_args([*argv, "--curated_uri", "zones/curated", "--raw_uri", "s3://raw-bucket/in"])
    assert args.settings.curated_uri == str(tmp_path / "zones" / "curated")
    assert args.settings.raw_uri == "s3://raw-bucket/in"


def test_local_cli_exit_codes_for_a_missing_table_and_a_held_lock(spark, aws, deployed, lake, settings, monkeypatch,
                                                                  capsys):
    """A table that does not exist is a setting that stops the run before it starts (2, one line);
    a run that found the dataset locked did nothing, which a wrapper must not take for success (3)."""
    from lake_ingest import cli

    monkeypatch.setattr(cli, "local_spark", lambda: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)
    assert cli.main([*job_argv(settings, "cli-1"), "--contracts_table", "no-such-table"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lake-ingest: the run could not start: ResourceNotFoundException") and "Traceback" not in err
    state = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    with state.dataset_lock("orders", "another-run", 600):
        assert cli.main(job_argv(settings, "cli-2")) == 3
    assert json.loads(capsys.readouterr().out)["status"] == "LOCKED"


def test_local_cli_prints_the_result_of_a_run_that_a_contract_error_failed(spark, aws, deployed, lake, settings,
                                                                          monkeypatch, capsys):
    """A contract error found once the run started (Spark refusing a reader setting) fails the
    run: the command prints its result, as for any failed run."""
    from lake_ingest import _job, cli
    from lake_ingest._contract import ContractError

    generate_extracts(lake / "raw", days=1, rows_per_file=50, datasets=["orders"])
    monkeypatch.setattr(cli, "local_spark", lambda: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)

    def refuse(self, planned, ingested_at):
        raise ContractError("orders", ["format.options: Spark refuses them"])

    monkeypatch.setattr(_job._IngestRun, "_write_readable", refuse)
    assert cli.main(job_argv(settings, "cli-3")) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "FAILED" and "Spark refuses them" in out["message"]


def test_region_names_of_every_partition_are_accepted(settings):
    for region in ("eu-west-1", "us-gov-west-1", "cn-north-1", "us-isob-east-1", "eusc-de-east-1"):
        assert parse_job_args([*job_argv(settings), "--aws_region", region]).aws_region == region


def test_whole_stage_code_of_any_size_only_where_the_jvm_compiles_it(spark):
    """A local session starts its JVM with HotSpot's huge-method compiling on, so the job lets
    Spark generate whole-stage methods up to 16,000 bytes; a cluster session (Glue, whose executors' JVM
    options are Glue's own) keeps the 8,000-byte limit, above which Spark runs operator by
    operator instead of leaving one huge method to the interpreter."""
    from lake_ingest import configure_spark
    from lake_ingest._spark import huge_methods_compiled

    assert huge_methods_compiled(spark)
    assert spark.conf.get("spark.sql.codegen.hugeMethodLimit") == "16000"
    glue_conf: dict[str, str] = {}
    glue = types.SimpleNamespace(sparkContext=types.SimpleNamespace(master="yarn", _jvm=spark.sparkContext._jvm),
                                 conf=types.SimpleNamespace(set=glue_conf.__setitem__))
    assert not huge_methods_compiled(glue)
    configure_spark(glue)
    assert glue_conf["spark.sql.codegen.hugeMethodLimit"] == "8000"
    assert glue_conf["spark.sql.session.timeZone"] == "UTC"
