"""A run that dies anywhere leaves nothing half-visible, and the rerun gives each row once."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import metric_sum
from lake_ingest import AwsClients, run_ingest
from lake_ingest import _job as job_module
from lake_ingest._contract_store import ContractStore
from lake_ingest._state import LOCK_ID, StateStore
from lake_ingest.local.athena import LocalAthena
from lake_ingest.local.aws_setup import bootstrap
from lake_ingest.local.sample_data import generate_extracts


def visible(glue, sql):
    with LocalAthena(glue) as athena:
        return athena.query(sql)


def runs(aws, settings):
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    return {r["run_id"]: r for r in store.runs("orders")}


def test_failure_after_writing_data_leaves_nothing_visible(spark, aws, deployed, lake, settings, monkeypatch):
    generate_extracts(lake / "raw", days=2, rows_per_file=400, datasets=["orders"])
    real_write = job_module.write_parquet
    calls = []

    def write_then_die(df, uri, partition_by=(), **options):
        calls.append(uri)
        real_write(df, uri, partition_by, **options)
        if "/quarantine/" in uri:  # curated written (and settled), quarantine written: die before the commit
            raise OSError("No space left on device")

    monkeypatch.setattr(job_module, "write_parquet", write_then_die)
    with pytest.raises(OSError, match="No space left"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    record = runs(aws, settings)["run-1"]
    assert record["status"] == "FAILED" and "No space left" in record["error"] and record["cleaned"]
    assert not list((lake / "curated").rglob("*.parquet")) and not list((lake / "quarantine").rglob("*.parquet"))
    with pytest.raises(aws.glue.exceptions.EntityNotFoundException):
        aws.glue.get_partitions(DatabaseName="sales", TableName="orders")

    monkeypatch.setattr(job_module, "write_parquet", real_write)
    result = run_ingest(spark, "orders", "run-2", settings, aws)
    assert result.files_ingested == 2 and result.rows_read == 800
    count, distinct = visible(aws.glue, "SELECT count(*), count(DISTINCT order_id) FROM sales.orders")[0]
    assert count == distinct == result.rows_written
    assert visible(aws.glue, "SELECT DISTINCT lake_run_id FROM sales.orders") == [("run-2",)]


def test_a_run_whose_lock_was_released_under_it_cannot_commit(spark, aws, deployed, lake, settings, monkeypatch):
    """The state machine releases a dataset's lock when its Glue task fails or times out; Step
    Functions stops the Glue run then, but a run still alive can meet the next execution's run.
    That run's recovery marks the live one ABANDONED and removes its files; the live one's commit
    point (its record moving from RUNNING to COMMITTING) is then refused, so each row is visible
    once, from the later run."""
    generate_extracts(lake / "raw", days=2, rows_per_file=300, datasets=["orders"])
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    real = job_module._IngestRun._write_manifest
    later: list = []

    def another_run_first(self, commit, roots):
        if self.run_id == "run-A" and not later:
            aws.dynamodb.delete_item(TableName=settings.runs_table,  # the state machine's ReleaseLock
                                     Key={"dataset_id": {"S": "orders"}, "run_id": {"S": LOCK_ID}})
            later.append(run_ingest(spark, "orders", "run-B", settings, aws))
        return real(self, commit, roots)

    monkeypatch.setattr(job_module._IngestRun, "_write_manifest", another_run_first)
    with pytest.raises(job_module.CommitRefused, match="the run record says ABANDONED"):
        run_ingest(spark, "orders", "run-A", settings, aws)
    [b] = later
    assert (b.status, b.files_ingested, b.rows_read) == ("SUCCEEDED", 2, 600)
    records = {r["run_id"]: r["status"] for r in store.runs("orders")}
    assert records == {"run-A": "ABANDONED", "run-B": "SUCCEEDED"}
    count, distinct = visible(aws.glue, "SELECT count(*), count(DISTINCT order_id) FROM sales.orders")[0]
    assert count == distinct == b.rows_written
    assert visible(aws.glue, "SELECT DISTINCT lake_run_id FROM sales.orders") == [("run-B",)]
    # what run-A wrote before run-B's recovery is gone, and so is what it wrote after (its commit
    # manifest): run-A removes it when its refused commit point finds its record ABANDONED
    assert [p for p in lake.rglob("*") if "run-A" in str(p) and p.is_file()] == []


def test_a_recovery_that_read_a_live_run_before_its_commit_point_completes_that_commit(
        spark, aws, deployed, lake, settings, monkeypatch):
    """The other order of the race above: run-B's recovery reads run-A as RUNNING, then run-A
    passes its commit point. run-B's ABANDONED write, made on the condition that run-A is still
    RUNNING, is refused; run-B completes run-A's commit instead of removing its files. Both then
    move the record to SUCCEEDED on the condition that it says COMMITTING: the one that wins
    publishes the counts, so each row is visible and counted once."""
    generate_extracts(lake / "raw", days=2, rows_per_file=300, datasets=["orders"])
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    real_update, real_runs = StateStore.update_run, StateStore.runs
    before_commit_point: dict = {}
    later: list = []

    def update_run(self, dataset_id, run_id, values, expect_status=None, **kwargs):
        if run_id == "run-A" and values.get("status") == "COMMITTING" and not later:
            before_commit_point.update(store.get_run("orders", "run-A"))  # what run-B's recovery reads
            answer = real_update(self, dataset_id, run_id, values, expect_status, **kwargs)  # run-A's commit point
            aws.dynamodb.delete_item(TableName=settings.runs_table,  # the state machine's ReleaseLock
                                     Key={"dataset_id": {"S": "orders"}, "run_id": {"S": LOCK_ID}})
            later.append(run_ingest(spark, "orders", "run-B", settings, aws))
            return answer
        return real_update(self, dataset_id, run_id, values, expect_status, **kwargs)

    def runs(self, dataset_id, statuses=None):
        found = real_runs(self, dataset_id, statuses)
        if before_commit_point and not later:  # run-B's recovery, reading before run-A's commit point
            found = [before_commit_point if r["run_id"] == "run-A" else r for r in found]
        return found

    monkeypatch.setattr(StateStore, "update_run", update_run)
    monkeypatch.setattr(StateStore, "runs", runs)
    a = run_ingest(spark, "orders", "run-A", settings, aws)
    [b] = later
    assert before_commit_point["status"] == "RUNNING"
    assert (a.status, a.files_ingested, a.rows_read) == ("SUCCEEDED", 2, 600)
    assert (b.status, b.rows_read, b.message) == ("SUCCEEDED", 0, "nothing new to ingest")
    record = store.get_run("orders", "run-A")
    assert (record["status"], record["recovered_by"], record["metrics_published"]) == ("SUCCEEDED", "run-B", True)
    count, distinct = visible(aws.glue, "SELECT count(*), count(DISTINCT order_id) FROM sales.orders")[0]
    assert count == distinct == a.rows_written > 0
    assert visible(aws.glue, "SELECT DISTINCT lake_run_id FROM sales.orders") == [("run-A",)]
    assert sorted((e.state, e.run_id) for e in store.ledger("orders").values()) == [("INGESTED", "run-A")] * 2
    assert metric_sum(aws, settings, "RowsWritten") == a.rows_written  # counted once, by run-B's recovery
    assert metric_sum(aws, settings, "RunSucceeded") == 2  # run-A (counted by run-B) and run-B


def test_a_run_whose_lock_was_released_before_it_started_does_nothing(spark, aws, deployed, lake, settings,
                                                                      monkeypatch):
    """run-A took the lock, and lost it before its run record existed (the task timed out while
    the Glue run waited to start). run-B took the lock and ran whole; its recovery could not see
    run-A. run-A finds, once its record exists, that it no longer holds the lock, and stops: each
    row is visible once, from run-B."""
    generate_extracts(lake / "raw", days=1, rows_per_file=50, datasets=["orders"])
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    real_recover = job_module._IngestRun._recover
    later: list = []

    def recover_then_lose_the_lock(self):
        real_recover(self)
        if self.run_id == "run-A" and not later:
            aws.dynamodb.delete_item(TableName=settings.runs_table,  # the state machine's ReleaseLock
                                     Key={"dataset_id": {"S": "orders"}, "run_id": {"S": LOCK_ID}})
            later.append(run_ingest(spark, "orders", "run-B", settings, aws))

    monkeypatch.setattr(job_module._IngestRun, "_recover", recover_then_lose_the_lock)
    a = run_ingest(spark, "orders", "run-A", settings, aws)
    [b] = later
    assert (a.status, b.status, b.files_ingested) == ("LOCKED", "SUCCEEDED", 1)
    assert "was released before run run-A started" in a.message
    assert {r["run_id"]: r["status"] for r in store.runs("orders")} == {"run-A": "ABANDONED", "run-B": "SUCCEEDED"}
    count, distinct = visible(aws.glue, "SELECT count(*), count(DISTINCT order_id) FROM sales.orders")[0]
    assert count == distinct == b.rows_written > 0
    assert store.get_run("orders", LOCK_ID) is None  # run-B released its lock; run-A took nothing back


def test_the_counts_survive_a_lost_answer_to_the_succeeded_write(spark, aws, deployed, lake, settings, monkeypatch):
    """The SUCCEEDED write is applied but its answer is lost; the SDK's retry meets the write's own
    result and is refused. The run tells its own write from a recovery's and publishes its counts."""
    generate_extracts(lake / "raw", days=1, rows_per_file=50, datasets=["orders"])
    real = StateStore.update_run

    def update_run(self, dataset_id, run_id, values, expect_status=None, **kwargs):
        if values.get("status") == "SUCCEEDED" and expect_status == "COMMITTING":
            real(self, dataset_id, run_id, values, expect_status, **kwargs)  # applied, the answer lost
        return real(self, dataset_id, run_id, values, expect_status, **kwargs)  # the retry

    monkeypatch.setattr(StateStore, "update_run", update_run)
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert result.status == "SUCCEEDED"
    assert metric_sum(aws, settings, "RowsWritten") == result.rows_written > 0
    assert metric_sum(aws, settings, "RunSucceeded") == 1


def test_a_cleanup_does_not_mark_an_attempt_that_took_the_record_over(spark, aws, deployed, lake, settings,
                                                                      monkeypatch):
    """Attempt X of run-1 fails before its commit: FAILED, then it cleans. Attempt Y of run-1 takes
    the record over (RUNNING) in between. X's mark 'cleaned' must not land on Y's record: the next
    recovery would skip Y, never give it up, and its commit point would still pass. Nor may X's
    clean remove what Y writes."""
    generate_extracts(lake / "raw", days=1, rows_per_file=50, datasets=["orders"])
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    real_clean = job_module._IngestRun._clean_attempt
    run_dir = lake / "curated" / "sales" / "orders" / "lake_run_id=run-1"
    cleans, y_kept = [], []

    def die(*args, **kwargs):
        raise OSError("No space left on device")

    def clean(self):
        cleans.append(self.attempt)
        store.start_run("orders", "run-1", {"contract_version": 1, "attempt": "y"})  # attempt Y
        y_file = run_dir / "lake_attempt=y" / "lake_valid=true" / "part-y.parquet"
        y_file.parent.mkdir(parents=True)
        y_file.write_bytes(b"Y's")
        removed = real_clean(self)
        y_kept.append(y_file.exists())  # asserted below: _fail's own errors are logged, not raised
        y_file.unlink(missing_ok=True)  # nothing left below the run's prefix: X goes on to mark it cleaned
        return removed

    monkeypatch.setattr(job_module, "write_parquet", die)
    monkeypatch.setattr(job_module._IngestRun, "_clean_attempt", clean)
    with pytest.raises(OSError, match="No space left on device"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert len(cleans) == 1  # in X's _fail; an attempt's start removes nothing
    assert y_kept == [True]  # X removed its own files only
    record = store.get_run("orders", "run-1")
    assert (record["status"], record["attempt"], record.get("cleaned")) == ("RUNNING", "y", None)
    assert not list(run_dir.rglob("*.parquet"))
    monkeypatch.undo()
    run_ingest(spark, "orders", "run-2", settings, aws)  # Y died: the next recovery gives it up
    assert store.get_run("orders", "run-1")["status"] == "ABANDONED"


def test_a_failing_attempt_leaves_a_dead_attempts_files_to_the_next_recovery(spark, aws, deployed, lake, settings,
                                                                             monkeypatch):
    """An attempt that fails removes its own files only. What a dead earlier attempt of its run id
    left keeps the record from being marked cleaned, and the next run's recovery removes it."""
    generate_extracts(lake / "raw", days=1, rows_per_file=50, datasets=["orders"])
    dead = lake / "curated" / "sales" / "orders" / "lake_run_id=run-1" / "lake_attempt=dead" / "part-0.parquet"
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"left by a dead attempt")
    real_write = job_module.write_parquet

    def write_then_die(df, uri, partition_by=(), **options):
        real_write(df, uri, partition_by, **options)
        raise OSError("No space left on device")

    monkeypatch.setattr(job_module, "write_parquet", write_then_die)
    with pytest.raises(OSError, match="No space left"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    record = runs(aws, settings)["run-1"]
    assert record["status"] == "FAILED" and "cleaned" not in record
    assert [p for p in dead.parents[1].rglob("*") if p.is_file()] == [dead]  # its own files are gone
    monkeypatch.undo()
    assert run_ingest(spark, "orders", "run-2", settings, aws).status == "SUCCEEDED"
    assert not dead.parents[1].exists() and runs(aws, settings)["run-1"]["cleaned"]


def test_a_failure_whose_clean_fails_too_raises_the_first_and_the_next_run_cleans(spark, aws, deployed, lake,
                                                                                   settings, monkeypatch):
    generate_extracts(lake / "raw", days=1, rows_per_file=50, datasets=["orders"])
    real_write = job_module.write_parquet

    def write_then_die(df, uri, partition_by=(), **options):
        real_write(df, uri, partition_by, **options)
        raise OSError("No space left on device")

    def clean_fails(self):
        raise PermissionError("AccessDenied on DeleteObjects")

    monkeypatch.setattr(job_module, "write_parquet", write_then_die)
    monkeypatch.setattr(job_module._IngestRun, "_clean_attempt", clean_fails)
    with pytest.raises(OSError, match="No space left"):  # the run's own error, not the clean's
        run_ingest(spark, "orders", "run-1", settings, aws)
    record = runs(aws, settings)["run-1"]
    assert record["status"] == "FAILED" and "cleaned" not in record
    run_dir = lake / "curated" / "sales" / "orders" / "lake_run_id=run-1"
    assert list(run_dir.rglob("*.parquet"))
    monkeypatch.undo()
    assert run_ingest(spark, "orders", "run-2", settings, aws).status == "SUCCEEDED"
    assert not run_dir.exists() and runs(aws, settings)["run-1"]["cleaned"]


def test_crash_during_commit_is_completed_by_the_next_run(spark, aws, deployed, lake, settings, monkeypatch):
    generate_extracts(lake / "raw", days=3, rows_per_file=300, datasets=["orders"])
    real_record = StateStore.record_file
    recorded = []

    def record_then_die(self, dataset_id, entry):
        if len(recorded) == 1:
            raise ConnectionError("worker lost")
        recorded.append(entry.key)
        return real_record(self, dataset_id, entry)

    monkeypatch.setattr(StateStore, "record_file", record_then_die)
    with pytest.raises(ConnectionError):
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert runs(aws, settings)["run-1"]["status"] == "COMMITTING"
    first_rows = visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0]
    assert first_rows > 0  # partitions were registered before the process died
    run_dir = lake / "curated" / "sales" / "orders" / "lake_run_id=run-1"
    committed = f"lake_attempt={runs(aws, settings)['run-1']['attempt']}"
    left = run_dir / "lake_attempt=dead" / "lake_valid=true" / "part-0.parquet"  # an earlier attempt's
    left.parent.mkdir(parents=True)
    left.write_bytes(b"left by a dead attempt")

    monkeypatch.setattr(StateStore, "record_file", real_record)
    result = run_ingest(spark, "orders", "run-2", settings, aws)
    assert result.rows_read == 0 and result.files_skipped == 3  # the commit was completed, not redone
    assert [p.name for p in run_dir.iterdir()] == [committed]  # and what other attempts left is gone
    records = runs(aws, settings)
    assert records["run-1"]["status"] == "SUCCEEDED" and records["run-1"]["recovered_by"] == "run-2"
    assert records["run-1"]["rows_written"] == first_rows and result.partitions_added == 0
    ledger = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).ledger("orders")
    assert sorted(e.state for e in ledger.values()) == ["INGESTED"] * 3
    assert visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0] == first_rows
    # the failure raised the alarm's metric, with the rows that became visible, counted once
    assert metric_sum(aws, settings, "RunFailed") == 1
    assert metric_sum(aws, settings, "RowsWritten") == first_rows
    assert records["run-1"]["partitions_added"] == 3  # recorded by the run that completed the commit


def test_a_backfill_of_thousands_of_partitions_commits(spark, aws, deployed, lake, settings):
    """The commit manifest (tables, partitions, files) lives beside the run's files and the run
    record keeps its SHA-256. In the record, whose DynamoDB item holds at most 400 KB, this run
    (2,000 daily partitions, a run id of 112 characters) failed in its commit, and so did every
    later run of the dataset."""
    from test_job import order, write_orders

    run_id = "backfill-" + "x" * 103
    days = [(dt.date(2018, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(2000)]
    write_orders(lake, "orders_backfill.csv.gz", [order(i + 1, day=d) for i, d in enumerate(days)])
    result = run_ingest(spark, "orders", run_id, settings, aws)
    assert (result.status, result.rows_written, result.partitions_added) == ("SUCCEEDED", 2000, 2000)
    assert visible(aws.glue, "SELECT count(DISTINCT order_date), min(order_date), max(order_date) FROM sales.orders") \
        == [(2000, dt.date(2018, 1, 1), dt.date.fromisoformat(days[-1]))]
    record = runs(aws, settings)[run_id]
    manifest = lake / "curated" / "sales" / "orders" / f"lake_run_id={run_id}" / f"lake_attempt={record['attempt']}" \
        / "_lake_commit.json"
    assert record["commit_manifest"] == str(manifest)
    assert record["commit_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert len(manifest.read_bytes()) > 400_000  # more than a DynamoDB item holds
    [table] = json.loads(manifest.read_text())["tables"]
    assert len(table["partitions"]) == 2000 and table["partitions"][0] == [
        ["2018-01-01", run_id],  # below the root
        f"lake_run_id={run_id}/lake_attempt={record['attempt']}/lake_valid=true/order_date=2018-01-01/"]


def _die_in_the_commit(spark, aws, settings, monkeypatch, run_id="run-1"):
    monkeypatch.setattr(StateStore, "record_file", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("lost")))
    with pytest.raises(ConnectionError):
        run_ingest(spark, "orders", run_id, settings, aws)
    monkeypatch.undo()
    assert runs(aws, settings)[run_id]["status"] == "COMMITTING"


def test_a_commit_is_completed_after_its_contract_renamed_the_table(spark, aws, deployed, lake, settings, monkeypatch):
    """The record keeps where the manifest is and the roots it was written under: a contract that
    meanwhile writes another table does not stop the commit of the old one."""
    from test_job import orders_doc

    generate_extracts(lake / "raw", days=2, rows_per_file=100, datasets=["orders"])
    _die_in_the_commit(spark, aws, settings, monkeypatch)
    doc = orders_doc()
    doc["target"]["table"] = "orders_v2"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    result = run_ingest(spark, "orders", "run-2", settings, aws)
    assert result.status == "SUCCEEDED" and result.rows_read == 0  # the files were the commit's
    record = runs(aws, settings)["run-1"]
    assert record["status"] == "SUCCEEDED" and record["partitions_added"] == 2
    count = visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0]
    assert count == record["rows_written"] > 0


def test_a_commit_left_inline_by_an_earlier_build_is_completed(spark, aws, deployed, lake, settings, monkeypatch):
    """An earlier build kept the manifest, with absolute locations, in the record itself."""
    generate_extracts(lake / "raw", days=2, rows_per_file=100, datasets=["orders"])
    _die_in_the_commit(spark, aws, settings, monkeypatch)
    record = runs(aws, settings)["run-1"]
    manifest = Path(record["commit_manifest"])
    commit = json.loads(manifest.read_text())
    for table in commit["tables"]:
        root = record["commit_roots"][table.pop("zone")]
        table["spec"]["location"] = root
        table["partitions"] = [[v, f"{root}/{loc}"] for v, loc in table["partitions"]]
    manifest.unlink()
    StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).update_run("orders", "run-1", {
        "commit": json.dumps(commit), "commit_manifest": None, "commit_sha256": None, "commit_roots": None})
    result = run_ingest(spark, "orders", "run-2", settings, aws)
    assert result.status == "SUCCEEDED" and result.rows_read == 0
    record = runs(aws, settings)["run-1"]
    assert record["status"] == "SUCCEEDED" and record["partitions_added"] == 2
    assert visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0] == record["rows_written"] > 0


def test_files_a_committer_leaves_beside_the_output_are_not_committed(spark, aws, deployed, lake, settings,
                                                                      monkeypatch):
    """An output committer may leave Parquet files in hidden directories under the run's prefix
    (_temporary/ of the file committer, __magic/ of S3A's): they are no partition's data."""
    generate_extracts(lake / "raw", days=2, rows_per_file=200, datasets=["orders"])
    real_write = job_module.write_parquet

    def write_and_leave_debris(df, uri, partition_by=(), **options):
        real_write(df, uri, partition_by, **options)
        if "/quarantine/" not in uri:  # the run's last write: debris in its curated prefix
            return
        curated = Path(uri.replace("/quarantine/", "/curated/"))
        some = next(curated.glob("lake_valid=true/*/*.parquet"))
        rel = some.relative_to(curated)
        for debris in (curated / "_temporary" / "0" / "task_1" / rel, curated / rel.parent / "__magic" / "part-1.parquet",
                       curated / ".hidden" / rel):
            debris.parent.mkdir(parents=True, exist_ok=True)
            debris.write_bytes(some.read_bytes())

    monkeypatch.setattr(job_module, "write_parquet", write_and_leave_debris)
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert result.status == "SUCCEEDED" and result.partitions_added == 2
    parts = aws.glue.get_partitions(DatabaseName="sales", TableName="orders")["Partitions"]
    assert all("_temporary" not in p["StorageDescriptor"]["Location"] for p in parts) and len(parts) == 2
    assert visible(aws.glue, "SELECT count(*) FROM sales.orders") == [(result.rows_written,)]


def test_a_commit_whose_manifest_is_lost_stops_with_the_reason(spark, aws, deployed, lake, settings, monkeypatch,
                                                               capsys):
    generate_extracts(lake / "raw", days=1, rows_per_file=100, datasets=["orders"])
    _die_in_the_commit(spark, aws, settings, monkeypatch)
    manifest = Path(runs(aws, settings)["run-1"]["commit_manifest"])
    manifest.write_text(manifest.read_text().replace("INGESTED", "EMPTY"))
    message = "run run-1 of orders stopped in its commit, and its commit manifest .* is altered"
    with pytest.raises(RuntimeError, match=message):
        run_ingest(spark, "orders", "run-2", settings, aws)
    manifest.unlink()
    with pytest.raises(job_module.CommitBlocked, match=message.replace("altered", "missing")):
        run_ingest(spark, "orders", "run-2", settings, aws)
    assert runs(aws, settings)["run-1"]["status"] == "COMMITTING"  # nothing is guessed

    from lake_ingest import cli
    from test_entrypoints import job_argv

    monkeypatch.setattr(cli, "local_spark", lambda: spark)
    monkeypatch.setattr(spark, "stop", lambda: None)
    capsys.readouterr()
    assert cli.main(job_argv(settings, "run-3")) == 2  # the run did not start: one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("lake-ingest: run run-1 of orders stopped in its commit") and "Traceback" not in err
    assert "run-3" not in runs(aws, settings)


def test_a_run_killed_in_its_commit_is_counted_by_the_run_that_completes_it(spark, aws, deployed, lake, settings,
                                                                             monkeypatch):
    """A killed run publishes nothing and its record stops at COMMITTING: the run that completes
    the commit records the partitions it registered and publishes the counts, once."""
    generate_extracts(lake / "raw", days=3, rows_per_file=300, datasets=["orders"])
    real_record = StateStore.record_file

    def die(self, dataset_id, entry):
        raise ConnectionError("worker lost")

    monkeypatch.setattr(StateStore, "record_file", die)
    monkeypatch.setattr(job_module._IngestRun, "_fail", lambda self, exc: None)  # killed: no failure handling
    with pytest.raises(ConnectionError):
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert runs(aws, settings)["run-1"]["status"] == "COMMITTING"
    assert metric_sum(aws, settings, "RowsWritten") == 0

    monkeypatch.setattr(StateStore, "record_file", real_record)
    run_ingest(spark, "orders", "run-2", settings, aws)
    record = runs(aws, settings)["run-1"]
    visible_rows = visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0]
    assert record["status"] == "SUCCEEDED" and record["partitions_added"] == 3 and record["metrics_published"]
    assert record["seconds"] > 0  # its time until the commit point, which the recovery reports
    assert runs(aws, settings)["run-2"]["metrics_published"] is True  # a run that committed itself
    assert metric_sum(aws, settings, "RowsWritten") == record["rows_written"] == visible_rows > 0
    assert metric_sum(aws, settings, "RunSucceeded") == 2 and metric_sum(aws, settings, "RunFailed") == 0
    run_ingest(spark, "orders", "run-3", settings, aws)  # nothing more to complete, nothing counted twice
    assert metric_sum(aws, settings, "RowsWritten") == visible_rows


def test_a_run_failing_in_its_commit_and_the_recovery_completing_it_count_it_once(spark, aws, deployed, lake,
                                                                                   settings, monkeypatch):
    """run-A fails in its commit but is still reporting its failure when run-B's recovery, which
    read run-A's record before, completes the commit. The failure report and the completion each
    publish the counts only by the write that marks them published: they are counted once."""
    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["orders"])
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    real_record, real_fail = StateStore.record_file, job_module._IngestRun._fail
    real_complete = job_module._IngestRun._complete_commit
    live_a: dict = {}

    def die(self, dataset_id, entry):
        raise ConnectionError("lost in the commit")

    monkeypatch.setattr(StateStore, "record_file", die)
    monkeypatch.setattr(job_module._IngestRun, "_fail", lambda self, exc: live_a.update(job=self, exc=exc))
    with pytest.raises(ConnectionError):
        run_ingest(spark, "orders", "run-A", settings, aws)
    monkeypatch.setattr(StateStore, "record_file", real_record)
    monkeypatch.setattr(job_module._IngestRun, "_fail", real_fail)
    assert store.get_run("orders", "run-A")["metrics_published"] is False

    def complete(self, run):  # run-B has read run-A's record; run-A reports its failure now
        real_fail(live_a["job"], live_a["exc"])
        return real_complete(self, run)

    monkeypatch.setattr(job_module._IngestRun, "_complete_commit", complete)
    run_ingest(spark, "orders", "run-B", settings, aws)
    record = store.get_run("orders", "run-A")
    assert (record["status"], record["recovered_by"]) == ("SUCCEEDED", "run-B")
    assert metric_sum(aws, settings, "RowsWritten") == record["rows_written"] > 0
    assert metric_sum(aws, settings, "RunFailed") == 1  # run-A's report, which counted the rows
    assert visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0] == record["rows_written"]


def test_a_column_added_by_a_run_that_dies_in_its_commit_stays_in_its_record(spark, aws, deployed, lake, settings,
                                                                              monkeypatch):
    """The table gains the column before the commit point: the record says so from then on, and
    the run that completes the commit (which finds the column there) keeps it."""
    import gzip
    import json

    from lake_ingest.local.sample_data import generate_extracts

    generate_extracts(lake / "raw", days=1, rows_per_file=50, datasets=["customers"])
    assert run_ingest(spark, "customers", "run-0", settings, aws).status == "SUCCEEDED"
    record = {"customer_id": 9001, "name": "N", "email": "n@example.com", "country": "DE",
              "signupDate": "01/02/2025", "loyaltyPoints": 1, "active": True,
              "updatedAt": "2026-12-01T08:00:00", "segment": "gold"}
    path = lake / "raw" / "crm" / "customers" / "customers_2026-12-01.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(record) + "\n").encode(), mtime=0))

    def die(self, dataset_id, entry):
        raise ConnectionError("worker lost")

    real_record = StateStore.record_file
    monkeypatch.setattr(StateStore, "record_file", die)
    with pytest.raises(ConnectionError):
        run_ingest(spark, "customers", "run-1", settings, aws)
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    assert store.get_run("customers", "run-1")["added_columns"] == ["segment"]
    monkeypatch.setattr(StateStore, "record_file", real_record)
    run_ingest(spark, "customers", "run-2", settings, aws)
    done = store.get_run("customers", "run-1")
    assert (done["status"], done["added_columns"]) == ("SUCCEEDED", ["segment"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_killed_process_mid_write_then_rerun(spark, lake, settings):
    """SIGKILL the job (a separate process, as a lost Glue worker) while Spark writes."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        aws = AwsClients(endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-west-1")
        bootstrap(aws, settings)
        generate_extracts(lake / "raw", days=4, rows_per_file=150_000, datasets=["orders"])
        cmd = [sys.executable, "-m", "lake_ingest.cli", "--dataset_id", "orders", "--run_id", "killed",
               "--raw_uri", settings.raw_uri, "--curated_uri", settings.curated_uri,
               "--quarantine_uri", settings.quarantine_uri, "--lock_lease_seconds", "45",
               "--aws_endpoint_url", f"http://127.0.0.1:{port}"]
        env = {**os.environ, "LAKE_SPARK_DRIVER_MEMORY": "1g"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        run_dir = lake / "curated" / "sales" / "orders" / "lake_run_id=killed"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if run_dir.exists() and any(p.is_file() for p in run_dir.rglob("*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the job finished before it could be killed; give it more data"
        assert any(p.is_file() for p in run_dir.rglob("*")), "the job wrote nothing in 120 s: nothing to kill mid-write"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

        store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
        assert store.get_run("orders", "killed")["status"] == "RUNNING"
        assert store.ledger("orders") == {}
        lock = store.get_run("orders", LOCK_ID)
        assert lock["holder"] == "killed"
        # while the lease lasts, nobody may take over (45 s leaves room for a slow start before the kill)
        assert time.time() < lock["expires_at"] - 2, "the lease ran out before the check: lengthen it"
        assert run_ingest(spark, "orders", "too-early", settings, aws).status == "LOCKED"
        time.sleep(max(0.0, lock["expires_at"] - time.time() + 1.1))  # the dead run's lease runs out

        result = run_ingest(spark, "orders", "rerun", settings, aws)
        assert result.status == "SUCCEEDED" and result.files_ingested == 4
        assert store.get_run("orders", "killed")["status"] == "ABANDONED"
        assert not run_dir.exists()
        count, distinct, run_ids = visible(
            aws.glue, "SELECT count(*), count(DISTINCT order_id), list(DISTINCT lake_run_id) FROM sales.orders")[0]
        assert count == distinct == result.rows_written and run_ids == ["rerun"]
        assert result.rows_read == 600_000
    finally:
        server.stop()


def test_same_run_id_retry_replaces_its_own_partial_output(spark, aws, deployed, lake, settings, monkeypatch):
    """Step Functions retries a Glue task with the same run id: once the retry passes its commit
    point, what dead attempts left below the run's prefix is removed (a build without attempt
    prefixes wrote straight below it)."""
    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["orders"])
    run_dirs = [lake / zone / "sales" / "orders" / "lake_run_id=run-1" for zone in ("curated", "quarantine")]
    stale = [run_dirs[0] / "lake_attempt=dead" / "lake_valid=true" / "order_date=1999-01-01" / "part-0.parquet",
             run_dirs[0] / "order_date=1999-01-01" / "part-stale.parquet", run_dirs[0] / "_lake_commit.json",
             run_dirs[1] / "lake_attempt=dead" / "part-1.parquet"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a dead attempt")
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert result.status == "SUCCEEDED" and not any(p.exists() for p in stale)
    # only the attempt that committed is left, in both zones
    attempt = runs(aws, settings)["run-1"]["attempt"]
    assert [sorted(p.name for p in d.iterdir()) for d in run_dirs] == [[f"lake_attempt={attempt}"]] * 2
    assert visible(aws.glue, "SELECT min(order_date) FROM sales.orders")[0][0].year == 2026
    # and a retry after success is a no-op that reports the recorded result
    again = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (again.status, again.rows_written) == ("SUCCEEDED", result.rows_written)


def test_a_failing_attempt_leaves_what_another_attempt_of_its_run_id_committed(spark, aws, deployed, lake, settings):
    """Two attempts of one run id (a start that was retried although it had started): the one that
    fails after the other committed must not remove the committed files nor mark the run failed."""
    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["orders"])
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    written = sorted((lake / "curated").rglob("*.parquet"))
    assert result.status == "SUCCEEDED" and written
    late = job_module._IngestRun(spark, "orders", "run-1", settings, aws, None, None)
    late.contract = ContractStore(aws.dynamodb, settings.contracts_table).get("orders")
    late._fail(RuntimeError("the other attempt's executor was lost"))
    assert sorted((lake / "curated").rglob("*.parquet")) == written
    assert StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).get_run("orders", "run-1")[
        "status"] == "SUCCEEDED"
    assert visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0] == result.rows_written
    assert metric_sum(aws, settings, "RunFailed") == 0  # the run's rows are visible: no alarm
    assert metric_sum(aws, settings, "RowsWritten") == result.rows_written


class Paused(BaseException):
    """Stops an attempt where it stands, as if it were still alive: no failure handling runs, and
    (with ``_paused_attempts_keep_their_lock``) its lock stays."""


def _paused_attempts_keep_their_lock(monkeypatch):
    real_lock = StateStore.dataset_lock
    alive = []  # a paused attempt's lock, never closed (closing its generator would release it)

    @contextlib.contextmanager
    def dataset_lock(self, *args, **kwargs):
        lock = real_lock(self, *args, **kwargs)
        lock.__enter__()
        try:
            yield
        except Paused:
            alive.append(lock)
            raise  # not released: the attempt is alive
        except BaseException as exc:
            if not lock.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            lock.__exit__(None, None, None)

    monkeypatch.setattr(StateStore, "dataset_lock", dataset_lock)
    return alive


def test_an_attempt_whose_record_another_attempt_took_over_cannot_commit(spark, aws, deployed, lake, settings,
                                                                         monkeypatch):
    """Two attempts of one run id alive together (a start retried although it had started):
    attempt B takes the run record over and writes while attempt A reaches its commit point. A's
    commit point is refused (the record is B's), A removes what it wrote and nothing of B's, and
    nothing is visible. B then dies: the next run's recovery gives run-1 up and each row is
    ingested once."""
    generate_extracts(lake / "raw", days=2, rows_per_file=300, datasets=["orders"])
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    real_manifest, real_write = job_module._IngestRun._write_manifest, job_module.write_parquet
    attempts: dict[str, str] = {}

    def b_pauses_after_its_main_write(df, uri, partition_by=(), **options):
        real_write(df, uri, partition_by, **options)
        if "b" in attempts and attempts["b"] in uri:
            raise Paused

    def b_starts_before_a_commits(self, commit, roots):
        if "a" not in attempts:
            attempts["a"] = self.attempt
            with pytest.raises(Paused):
                run_ingest(spark, "orders", "run-1", settings, aws)  # attempt B
            attempts["b"] = store.get_run("orders", "run-1")["attempt"]
        return real_manifest(self, commit, roots)

    real_start = StateStore.start_run

    def start_run(self, dataset_id, run_id, attrs):
        if "a" in attempts:  # B's start: from now on its writes pause it
            attempts["b"] = attrs["attempt"]
        return real_start(self, dataset_id, run_id, attrs)

    monkeypatch.setattr(job_module._IngestRun, "_write_manifest", b_starts_before_a_commits)
    monkeypatch.setattr(job_module, "write_parquet", b_pauses_after_its_main_write)
    monkeypatch.setattr(StateStore, "start_run", start_run)
    paused = _paused_attempts_keep_their_lock(monkeypatch)
    with pytest.raises(job_module.CommitRefused) as refused:
        run_ingest(spark, "orders", "run-1", settings, aws)
    a, b = attempts["a"], attempts["b"]
    assert f"commit point of attempt {a} was refused; the run record says RUNNING for attempt {b}" in str(refused.value)
    record = store.get_run("orders", "run-1")
    assert (record["status"], record["attempt"]) == ("RUNNING", b)
    assert store.ledger("orders") == {}
    assert aws.glue.get_partitions(DatabaseName="sales", TableName="orders")["Partitions"] == []
    written = {p.relative_to(lake).parts[4] for p in lake.rglob("*.parquet") if "lake_run_id=run-1" in str(p)}
    assert written == {f"lake_attempt={b}"}  # A's files are gone, B's (alive) are untouched
    assert metric_sum(aws, settings, "RunFailed") == 0  # A reports nothing: the run is B's
    lock = store.get_run("orders", LOCK_ID)  # A's end did not release the lock under B
    assert (lock["holder"], lock["attempt"]) == ("run-1", b) and len(paused) == 1
    assert run_ingest(spark, "orders", "run-2", settings, aws).status == "LOCKED"

    monkeypatch.undo()
    store.ddb.delete_item(TableName=settings.runs_table,  # B is dead: its lease ran out
                          Key={"dataset_id": {"S": "orders"}, "run_id": {"S": LOCK_ID}})
    paused.pop().gen.close()  # (B's lock, closed while the emulator is up: its release finds no lock)
    result = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (result.status, result.files_ingested, result.rows_read) == ("SUCCEEDED", 2, 600)
    assert store.get_run("orders", "run-1")["status"] == "ABANDONED"
    assert not [p for p in lake.rglob("*") if "run-1" in str(p) and p.is_file()]
    count, distinct = visible(aws.glue, "SELECT count(*), count(DISTINCT order_id) FROM sales.orders")[0]
    assert count == distinct == result.rows_written > 0


def test_an_attempt_that_finds_its_run_committed_at_its_start_completes_the_commit(spark, aws, deployed, lake,
                                                                                   settings, monkeypatch):
    """Attempt A of run-1 passes its commit point after attempt B's recovery read the records:
    B's start is refused (a committing run cannot be taken over). B completes A's commit instead,
    as a recovery would, and reports the run; its rows are visible and counted once."""
    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["orders"])
    _die_in_the_commit(spark, aws, settings, monkeypatch)  # A, in its commit
    monkeypatch.setattr(job_module._IngestRun, "_recover", lambda self: None)  # B read the records before
    result = run_ingest(spark, "orders", "run-1", settings, aws)  # B
    record = runs(aws, settings)["run-1"]
    assert (result.status, record["status"], record["recovered_by"]) == ("SUCCEEDED", "SUCCEEDED", "run-1")
    assert result.rows_written == record["rows_written"] > 0
    count, distinct = visible(aws.glue, "SELECT count(*), count(DISTINCT order_id) FROM sales.orders")[0]
    assert count == distinct == result.rows_written
    assert metric_sum(aws, settings, "RowsWritten") == result.rows_written


def test_run_id_pattern_allows_only_one_safe_path_segment():
    # The run id becomes a partition directory: the pattern keeps it one safe path segment.
    assert job_module.RUN_ID_PATTERN.match("sfn-exec-2026-11-26T10-00-00.123Z")
    for bad in ("a/b", "..", "", "x" * 200, "a b", "t:1"):
        assert not job_module.RUN_ID_PATTERN.match(bad)


def test_what_an_attempt_writes_after_its_run_was_cleaned_is_swept_once_the_lease_is_over(spark, aws, deployed, lake,
                                                                                          settings):
    """An attempt whose files were removed (another attempt of its run id committed, or a
    recovery gave its run up) may live on, write again and be killed before it removes that.
    The cleanup marks the record; the first run after the lock's lease (when every attempt of
    that run has ended) removes the leftovers and clears the mark. A run that met no other
    attempt leaves no mark."""
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["orders"])
    curated = lake / "curated" / "sales" / "orders"
    dead = curated / "lake_run_id=run-1" / "lake_attempt=dead" / "lake_valid=true"
    dead.mkdir(parents=True)
    (dead / "part-0.parquet").write_bytes(b"a dead attempt's")
    # a run given up by a recovery: its record still says RUNNING, and it wrote files
    store.start_run("orders", "given-up", {"attempt": "old"})
    gone = curated / "lake_run_id=given-up" / "lake_attempt=old" / "part-0.parquet"
    gone.parent.mkdir(parents=True)
    gone.write_bytes(b"a given-up run's")

    before = time.time()
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert result.status == "SUCCEEDED" and not dead.exists() and not gone.exists()
    records = runs(aws, settings)
    assert records["given-up"]["status"] == "ABANDONED" and records["given-up"]["cleaned"]
    for rid in ("run-1", "given-up"):
        assert int(before) + settings.lock_lease_seconds <= records[rid]["sweep_after"] <= time.time() + settings.lock_lease_seconds

    # both lived on, wrote again, and were killed
    late = [dead / "part-1.parquet", gone.parent / "part-1.parquet"]
    for path in late:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"written after the cleanup")
    assert run_ingest(spark, "orders", "run-2", settings, aws).message.startswith("nothing new to ingest")
    assert all(p.exists() for p in late)  # within the lease: they may still be writing
    assert "sweep_after" not in runs(aws, settings)["run-2"]  # it met no other attempt

    for rid in ("run-1", "given-up"):
        store.update_run("orders", rid, {"sweep_after": int(time.time()) - 1})  # the lease is over
    run_ingest(spark, "orders", "run-3", settings, aws)
    assert not any(p.exists() for p in late)
    records = runs(aws, settings)
    assert not any("sweep_after" in records[rid] for rid in ("run-1", "given-up"))
    attempt = records["run-1"]["attempt"]
    assert sorted(p.name for p in (curated / "lake_run_id=run-1").iterdir()) == [f"lake_attempt={attempt}"]
    assert visible(aws.glue, "SELECT count(*) FROM sales.orders")[0][0] == result.rows_written

    # a retry that takes over the record of another attempt marks its run, though that left nothing
    store.start_run("orders", "run-4", {"attempt": "first"})
    store.update_run("orders", "run-4", {"status": "FAILED", "cleaned": True})
    generate_extracts(lake / "raw", days=2, rows_per_file=200, datasets=["orders"])
    assert run_ingest(spark, "orders", "run-4", settings, aws).files_ingested == 1
    assert "sweep_after" in runs(aws, settings)["run-4"]
