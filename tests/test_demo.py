"""The local demo's own behaviour: what --fresh may delete, extracts never overwritten, a failed
dataset or execution reported and the exit code, the saved state, the quarantine query."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from lake_ingest import RunResult
from lake_ingest.local import demo
from lake_ingest.local.aws_state import load_state, save_state
from lake_ingest.local.orchestration import Execution
from lake_ingest.local.sample_data import ExtractConflict, generate_extracts


def test_fresh_refuses_a_directory_the_demo_did_not_make(tmp_path, capsys):
    lake = tmp_path / "lake"
    (lake / "src").mkdir(parents=True)
    (lake / "src" / "important.txt").write_text("x")
    (lake / "raw").mkdir()
    with pytest.raises(SystemExit) as info:
        demo.main(["--lake-dir", str(lake), "--fresh"])
    assert info.value.code == 2
    assert f"--fresh deletes only a lake the demo made; {lake} also holds src" in capsys.readouterr().err
    assert (lake / "src" / "important.txt").read_text() == "x" and (lake / "raw").is_dir()


def test_arguments_are_checked_before_anything_is_deleted(tmp_path, capsys):
    lake = tmp_path / "lake"
    (lake / "raw").mkdir(parents=True)
    with pytest.raises(SystemExit):
        demo.main(["--lake-dir", str(lake), "--fresh", "--days", "0"])
    assert "--days and --rows-per-file must be at least 1" in capsys.readouterr().err
    assert (lake / "raw").is_dir()


def test_extracts_are_never_overwritten_with_other_bytes(tmp_path):
    first = generate_extracts(tmp_path, days=1, rows_per_file=120, seed=7, datasets=["orders"])
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in first]
    assert generate_extracts(tmp_path, days=1, rows_per_file=120, seed=7, datasets=["orders"]) == first
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in first] == before  # the same bytes: left as they are
    with pytest.raises(ExtractConflict, match=r"orders_2026-11-01\.csv\.gz exists with other content than these "
                                              r"--days/--rows-per-file/--seed generate; the raw zone is never "
                                              r"overwritten"):
        generate_extracts(tmp_path, days=1, rows_per_file=120, seed=8, datasets=["orders"])
    assert [p.read_bytes() for p in first] == [b for b, _ in before]
    assert sorted(p.name for p in first[0].parent.iterdir()) == [first[0].name]  # no temporary file left


class _NoSpark:
    def stop(self):
        pass


def _fake_job(monkeypatch, failing: set[str]):
    calls = []

    def run_ingest(spark, dataset_id, run_id, settings, clients, on_progress=None):
        calls.append(dataset_id)
        if dataset_id in failing:
            raise RuntimeError(f"{dataset_id} broke")
        return RunResult(dataset_id, run_id, status="SUCCEEDED")

    monkeypatch.setattr(demo, "run_ingest", run_ingest)
    monkeypatch.setattr(demo, "local_spark", lambda *a, **k: _NoSpark())
    monkeypatch.setattr(demo, "generate_extracts", lambda *a, **k: [])
    return calls


def test_a_failed_dataset_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    calls = _fake_job(monkeypatch, failing={"customers"})
    results = demo.run_demo(tmp_path, 1, 10, 7, "SELECT 1 AS one")
    assert calls == ["customers", "meter_readings", "orders"]
    assert [(r.dataset_id, r.status) for r in results] == [
        ("customers", "FAILED"), ("meter_readings", "SUCCEEDED"), ("orders", "SUCCEEDED")]
    out = capsys.readouterr().out
    assert "[customers] FAILED: RuntimeError: customers broke" in out
    assert "No quarantine table yet: no run has rejected a row." in out and "Nothing new" not in out
    # the example query needs tables that no run created: reported, and the exit code says so
    assert demo.main(["--lake-dir", str(tmp_path / "other"), "--days", "1"]) == 1
    assert "query failed: CatalogException: Catalog Error: Table with name orders does not exist!" in (
        capsys.readouterr().out)


def test_a_failed_execution_reports_every_planned_dataset_and_fails(tmp_path, monkeypatch, capsys):
    """A Fail state leaves no output: the datasets come from the contracts, their status from the
    run records (none: the run never started), and the exit code is 1."""
    _fake_job(monkeypatch, failing=set())

    @contextlib.contextmanager
    def no_services(*a, **k):
        yield

    def failed_execution(clients, arn, payload, name=None, on_event=None, **k):
        from lake_ingest._state import StateStore

        settings = demo._settings(tmp_path)
        state = StateStore(clients.dynamodb, settings.ledger_table, settings.runs_table)
        state.start_run("orders", name, {})
        state.update_run("orders", name, {"status": "FAILED", "error": "schema conflict"})
        return Execution(arn=arn, status="FAILED", output=None, error="IngestFailed",
                         cause="orders failed", history=[])

    monkeypatch.setattr(demo, "emulated_services", no_services)
    monkeypatch.setattr(demo, "run_execution", failed_execution)
    results = demo.run_demo(tmp_path, 1, 10, 7, "SELECT 1 AS one", step_functions=True)
    assert [(r.dataset_id, r.status) for r in results] == [
        ("customers", demo.NO_RECORD), ("meter_readings", demo.NO_RECORD), ("orders", "FAILED"),
        ("(execution)", "FAILED")]
    assert "execution FAILED: orders failed" in capsys.readouterr().out


def test_the_state_is_saved_whole_or_not_at_all(tmp_path, aws, deployed, settings, monkeypatch):
    state = tmp_path / "state.json"
    save_state(aws, state, [settings.contracts_table])
    saved = state.read_text()
    assert load_state(aws, state) and not list(tmp_path.glob("*.partial"))
    aws.dynamodb.put_item(TableName=settings.contracts_table, Item={
        "dataset_id": {"S": "later"}, "enabled": {"BOOL": False}, "version": {"N": "1"}, "document": {"S": "{}"}})
    real_write = Path.write_text

    def stopped_halfway(self, data, *args, **kwargs):  # a full disk, or Ctrl-C, in the middle of the write
        real_write(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", stopped_halfway)
    with pytest.raises(OSError, match="No space left"):
        save_state(aws, state, [settings.contracts_table])
    monkeypatch.undo()
    assert state.read_text() == saved  # the state saved before is whole
    assert load_state(aws, state)
    state.write_text(state.read_text()[:40])  # a file cut short some other way is refused, not half restored
    with pytest.raises(ValueError, match=r"state\.json is not a saved state .*; start over with --fresh"):
        load_state(aws, state)


def test_a_restore_writes_every_item_and_partition_or_says_so(tmp_path, aws, deployed, settings, monkeypatch):
    """DynamoDB may hand items of a batch back unprocessed, and the catalog may refuse partitions:
    the restore writes what was handed back again, and stops on a refused partition."""
    from lake_ingest.local import aws_state

    monkeypatch.setattr(aws_state.time, "sleep", lambda s: None)
    for i in range(30):
        aws.dynamodb.put_item(TableName=settings.ledger_table, Item={
            "dataset_id": {"S": "orders"}, "file_id": {"S": f"k{i:02d}"}, "state": {"S": "INGESTED"}})
    aws.glue.create_database(DatabaseInput={"Name": "restored"})
    cols = [{"Name": "v", "Type": "string"}]
    aws.glue.create_table(DatabaseName="restored", TableInput={
        "Name": "t", "PartitionKeys": [{"Name": "d", "Type": "string"}], "StorageDescriptor": {"Columns": cols}})
    aws.glue.batch_create_partition(DatabaseName="restored", TableName="t", PartitionInputList=[
        {"Values": ["x"], "StorageDescriptor": {"Columns": cols, "Location": "s3://b/t/d=x"}}])
    state = tmp_path / "state.json"
    save_state(aws, state, [settings.ledger_table])
    for item in aws.dynamodb.scan(TableName=settings.ledger_table)["Items"]:
        aws.dynamodb.delete_item(TableName=settings.ledger_table,
                                 Key={"dataset_id": item["dataset_id"], "file_id": item["file_id"]})
    real_write, handed_back = aws.dynamodb.batch_write_item, []

    def some_unprocessed(RequestItems):
        [(table, requests)] = RequestItems.items()
        if not handed_back:
            handed_back.extend(requests[:3])
            real_write(RequestItems={table: requests[3:]})
            return {"UnprocessedItems": {table: requests[:3]}}
        return real_write(RequestItems=RequestItems)

    monkeypatch.setattr(aws.dynamodb, "batch_write_item", some_unprocessed)
    assert load_state(aws, state)  # the existing partition is no error
    assert len(handed_back) == 3
    keys = {i["file_id"]["S"] for i in aws.dynamodb.scan(TableName=settings.ledger_table)["Items"]}
    assert keys == {f"k{i:02d}" for i in range(30)}

    monkeypatch.setattr(aws.dynamodb, "batch_write_item", lambda RequestItems: {"UnprocessedItems": RequestItems})
    with pytest.raises(aws_state.StateError, match="DynamoDB did not take 25 items of the saved state after 8 tries"):
        load_state(aws, state)
    monkeypatch.setattr(aws.dynamodb, "batch_write_item", real_write)
    refused = {"Errors": [{"PartitionValues": ["x"], "ErrorDetail": {"ErrorCode": "InternalServiceException"}}]}
    monkeypatch.setattr(aws.glue, "batch_create_partition", lambda **kwargs: refused)
    with pytest.raises(aws_state.StateError, match=r"the catalog refused 1 partitions of restored\.t"):
        load_state(aws, state)


def test_a_moved_lake_keeps_a_catalog_of_its_own_files(tmp_path, aws, deployed, settings):
    """Locations under the lake are saved relative to it: after ``mv lake moved`` the catalog
    points at the moved files, not at the original's (which may still exist as a copy)."""
    lake, moved = tmp_path / "démo \"lake\"", tmp_path / "moved"  # escaped in JSON text
    lake.mkdir()
    glue = aws.glue
    glue.create_database(DatabaseInput={"Name": "moved_db"})
    cols = [{"Name": "v", "Type": "string"}]
    for name, location in (("t", f"{lake}/curated/moved_db/t"), ("elsewhere", "s3://bucket/t"),
                           ("sibling", f"{lake}2/curated/t")):
        glue.create_table(DatabaseName="moved_db", TableInput={
            "Name": name, "PartitionKeys": [{"Name": "d", "Type": "string"}],
            "StorageDescriptor": {"Columns": cols, "Location": location}})
    glue.batch_create_partition(DatabaseName="moved_db", TableName="t", PartitionInputList=[
        {"Values": ["x"], "StorageDescriptor": {"Columns": cols, "Location": f"file:{lake}/curated/moved_db/t/d=x"}}])
    # an attribute holding JSON text with a path under the lake
    manifest = json.dumps({"partitions": [[["x"], f"{lake}/curated/moved_db/t/d=x/"]]})
    aws.dynamodb.put_item(TableName=settings.runs_table, Item={
        "dataset_id": {"S": "orders"}, "run_id": {"S": "r1"}, "status": {"S": "COMMITTING"}, "commit": {"S": manifest}})
    save_state(aws, lake / "state.json", [settings.runs_table])
    assert str(lake) + "/" not in (lake / "state.json").read_text()

    lake.rename(moved)
    glue.delete_database(Name="moved_db")
    assert load_state(aws, moved / "state.json")
    locations = {t["Name"]: t["StorageDescriptor"]["Location"]
                 for t in glue.get_tables(DatabaseName="moved_db")["TableList"]}
    assert locations == {"t": f"{moved}/curated/moved_db/t", "elsewhere": "s3://bucket/t",
                         "sibling": f"{lake}2/curated/t"}
    [part] = glue.get_partitions(DatabaseName="moved_db", TableName="t")["Partitions"]
    assert part["StorageDescriptor"]["Location"] == f"file:{moved}/curated/moved_db/t/d=x"
    record = aws.dynamodb.get_item(TableName=settings.runs_table,
                                   Key={"dataset_id": {"S": "orders"}, "run_id": {"S": "r1"}})["Item"]
    assert json.loads(record["commit"]["S"]) == {"partitions": [[["x"], f"{moved}/curated/moved_db/t/d=x/"]]}


def test_saved_state_holds_no_lock_and_is_saved_after_each_dataset(tmp_path, monkeypatch):
    """A lock saved by a run stopped mid-way would block its dataset for the lease; and a demo
    killed after its first dataset keeps that dataset's ledger."""
    import json

    from lake_ingest._state import LOCK_ID, StateStore

    saved_runs: list[int] = []

    def run_ingest(spark, dataset_id, run_id, settings, clients, on_progress=None):
        state = StateStore(clients.dynamodb, settings.ledger_table, settings.runs_table)
        stuck = state.dataset_lock(dataset_id, "stopped-run", 7200)
        stuck.__enter__()  # held, as by a run that never got to release it
        state.start_run(dataset_id, run_id, {})
        saved = tmp_path / "_emulated_aws_state.json"
        saved_runs.append(len(json.loads(saved.read_text())["dynamodb"][settings.runs_table])
                          if saved.exists() else 0)
        return RunResult(dataset_id, run_id, status="SUCCEEDED")

    _fake_job(monkeypatch, failing=set())
    monkeypatch.setattr(demo, "run_ingest", run_ingest)
    demo.run_demo(tmp_path, 1, 10, 7, "SELECT 1 AS one")
    assert saved_runs == [0, 1, 2]  # each dataset found the ones before it saved
    state = json.loads((tmp_path / "_emulated_aws_state.json").read_text())
    runs = state["dynamodb"][demo._settings(tmp_path).runs_table]
    assert sorted(i["dataset_id"]["S"] for i in runs) == ["customers", "meter_readings", "orders"]
    assert not [i for i in runs if i["run_id"]["S"] == LOCK_ID]


def test_a_second_demo_reads_the_contract_files_as_they_are_now(tmp_path, monkeypatch):
    """The saved account used to be restored over the contracts just loaded: an edited contract
    file was undone until --fresh, and a deleted one stayed active."""
    import shutil

    import yaml

    contracts = tmp_path / "contracts"
    shutil.copytree(demo.CONTRACTS_DIR, contracts)
    monkeypatch.setattr(demo, "CONTRACTS_DIR", contracts)
    calls = _fake_job(monkeypatch, failing=set())
    lake = tmp_path / "lake"
    lake.mkdir()
    demo.run_demo(lake, 1, 10, 7, "SELECT 1 AS one")
    assert calls == ["customers", "meter_readings", "orders"]
    doc = yaml.safe_load((contracts / "orders.yaml").read_text())
    (contracts / "orders.yaml").write_text(yaml.safe_dump({**doc, "enabled": False}))
    (contracts / "customers.yaml").unlink()
    calls.clear()
    demo.run_demo(lake, 1, 10, 7, "SELECT 1 AS one")
    assert calls == ["meter_readings"]


def test_a_lake_dir_that_is_a_file_or_a_damaged_state_is_said_in_one_line(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SystemExit) as info:
        demo.main(["--lake-dir", str(afile)])
    assert info.value.code == 2 and "is a file, not a directory" in capsys.readouterr().err
    _fake_job(monkeypatch, failing=set())
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "_emulated_aws_state.json").write_text('{"dynamodb": {"t": [')  # cut short
    assert demo.main(["--lake-dir", str(lake), "--days", "1"]) == 2
    out = capsys.readouterr().out
    assert "is not a saved state" in out and "--fresh" in out and "Traceback" not in out


def test_setup_finds_its_tables_among_many_and_deletes_contracts_no_file_names(aws, settings):
    """ListTables returns 100 names a page: in a busier account the job's tables were taken for
    missing and created again (an error). And the contracts table holds what the files say, as
    after a deployment: a contract whose file is gone is deleted."""
    from lake_ingest._contract_store import ContractStore
    from lake_ingest.local.aws_setup import CONTRACTS_DIR, bootstrap, load_contract_files

    for i in range(101):
        aws.dynamodb.create_table(TableName=f"aaa-other-{i:03}", BillingMode="PAY_PER_REQUEST",
                                  AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                                  KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    docs = load_contract_files(CONTRACTS_DIR)
    bootstrap(aws, settings, docs=docs)
    bootstrap(aws, settings, docs=[d for d in docs if d["dataset_id"] != "customers"])
    assert ContractStore(aws.dynamodb, settings.contracts_table).dataset_ids(enabled_only=False) == [
        "meter_readings", "orders"]


def test_quarantine_query_covers_the_quarantine_tables_that_exist():
    assert demo.quarantine_sql(["sales.orders", "sales.customers"]) is None
    sql = demo.quarantine_sql(["sales.orders", "sales.orders_quarantine", "plant.meter_readings_quarantine"])
    assert sql == (
        "SELECT 'meter_readings' AS dataset, v.rule, v.action, count(*) AS rows FROM plant.meter_readings_quarantine, "
        "UNNEST(lake_violations) AS t(v) GROUP BY 1, 2, 3\nUNION ALL\n"
        "SELECT 'orders' AS dataset, v.rule, v.action, count(*) AS rows FROM sales.orders_quarantine, "
        "UNNEST(lake_violations) AS t(v) GROUP BY 1, 2, 3\nORDER BY 1, 4 DESC, 2")


def test_lake_entries_are_what_the_demo_writes():
    settings = demo._settings(Path("/lake"))
    zones = {Path(u).name for u in (settings.raw_uri, settings.curated_uri, settings.quarantine_uri)}
    assert zones | {"_emulated_aws_state.json", "_emulated_aws_state.json.partial"} == set(demo.LAKE_ENTRIES)


def test_aws_setup_prepares_a_moto_server_for_the_job(monkeypatch, capsys):
    """`python -m lake_ingest.local.aws_setup --endpoint-url ...` (README, "Running the job yourself")."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    from lake_ingest.local import aws_setup

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(var, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        assert aws_setup.main(["--endpoint-url", url]) == 0
        ddb = boto3.client("dynamodb", endpoint_url=url, region_name="eu-west-1")
        assert ddb.list_tables()["TableNames"] == ["datalake-contracts", "datalake-file-ledger", "datalake-runs"]
        assert ddb.scan(TableName="datalake-contracts", Select="COUNT")["Count"] == 3
        glue = boto3.client("glue", endpoint_url=url, region_name="eu-west-1")
        assert sorted(d["Name"] for d in glue.get_databases()["DatabaseList"]) == ["plant", "sales"]
    finally:
        server.stop()
    assert "contracts customers, meter_readings, orders" in capsys.readouterr().out


def test_a_commit_interrupted_in_a_lake_that_then_moved_is_completed_in_its_new_place(spark, tmp_path, monkeypatch):
    """The run record holds the manifest's location and the zones' roots as paths under the lake,
    which the saved state keeps relative to it: after ``mv``, the commit completes there."""
    import shutil

    from moto import mock_aws

    from lake_ingest import AwsClients, JobSettings, run_ingest
    from lake_ingest._state import StateStore
    from lake_ingest.local.athena import LocalAthena
    from lake_ingest.local.aws_setup import bootstrap

    def settings_of(root: Path) -> JobSettings:
        return JobSettings(raw_uri=str(root / "raw"), curated_uri=str(root / "curated"),
                           quarantine_uri=str(root / "quarantine"))

    first, moved = tmp_path / "lake", tmp_path / "moved"
    generate_extracts(first / "raw", days=1, rows_per_file=100, datasets=["orders"])
    with mock_aws():
        aws, settings = AwsClients(region_name="eu-west-1"), settings_of(first)
        bootstrap(aws, settings)
        monkeypatch.setattr(StateStore, "record_file", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("x")))
        with pytest.raises(ConnectionError):
            run_ingest(spark, "orders", "run-1", settings, aws)
        monkeypatch.undo()
        save_state(aws, first / "state.json", [settings.runs_table, settings.ledger_table])
    shutil.move(first, moved)
    with mock_aws():
        aws, settings = AwsClients(region_name="eu-west-1"), settings_of(moved)
        bootstrap(aws, settings)
        load_state(aws, moved / "state.json")
        assert run_ingest(spark, "orders", "run-2", settings, aws).status == "SUCCEEDED"
        state = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
        assert state.get_run("orders", "run-1")["status"] == "SUCCEEDED"
        parts = aws.glue.get_partitions(DatabaseName="sales", TableName="orders")["Partitions"]
        assert parts and all(p["StorageDescriptor"]["Location"].startswith(f"{moved}/") for p in parts)
        with LocalAthena(aws.glue) as athena:
            assert athena.query("SELECT count(*) FROM sales.orders")[0][0] == state.get_run("orders", "run-1")[
                "rows_written"]
