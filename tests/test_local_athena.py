"""Tests for the local Athena stand-in (DuckDB views over Glue-registered partitions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lake_ingest.local.athena import LocalAthena, duckdb_type, format_table, local_path

REGION = "eu-west-1"
PARQUET_SD = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}
ORDER_COLUMNS = [
    {"Name": "order_id", "Type": "bigint"},
    {"Name": "status", "Type": "string"},
    {"Name": "amount", "Type": "decimal(12,2)"},
    {"Name": "updated_at", "Type": "timestamp"},
]
ORDER_KEYS = [{"Name": "order_date", "Type": "date"}, {"Name": "lake_run_id", "Type": "string"}]
ORDER_SCHEMA = pa.schema([
    ("order_id", pa.int64()),
    ("status", pa.string()),
    ("amount", pa.decimal128(12, 2)),
    ("updated_at", pa.timestamp("us", tz="UTC")),
])


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def glue(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("glue", region_name=REGION)


def _orders(rows: list[tuple[int, str, str, str]]) -> pa.Table:
    return pa.table(
        {
            "order_id": [r[0] for r in rows],
            "status": [r[1] for r in rows],
            "amount": [Decimal(r[2]) for r in rows],
            "updated_at": [dt.datetime.fromisoformat(r[3]).replace(tzinfo=dt.UTC) for r in rows],
        },
        schema=ORDER_SCHEMA,
    )


def _create_table(glue: Any, database: str, name: str, location: Path, columns: list[dict[str, str]],
                  keys: list[dict[str, str]]) -> None:
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet"},
            "StorageDescriptor": {"Columns": columns, "Location": str(location), **PARQUET_SD},
            "PartitionKeys": keys,
        },
    )


def _add_partition(glue: Any, database: str, table: str, values: list[str], location: str) -> None:
    glue.create_partition(
        DatabaseName=database,
        TableName=table,
        PartitionInput={
            "Values": values,
            "StorageDescriptor": {"Columns": ORDER_COLUMNS, "Location": location, **PARQUET_SD},
        },
    )


@pytest.fixture
def lake(glue: Any, tmp_path: Path) -> Path:
    """sales.orders with two registered partitions, one unregistered, plus an empty table."""
    root = tmp_path / "curated" / "sales" / "orders"
    p1 = root / "order_date=2026-11-01" / "lake_run_id=run-1"
    p2 = root / "order_date=2026-11-02" / "lake_run_id=run-1"
    stray = root / "order_date=2026-11-03" / "lake_run_id=run-2"  # written, never registered
    for d in (p1, p2, stray):
        d.mkdir(parents=True)
    pq.write_table(_orders([(1, "NEW", "10.50", "2026-11-01 08:00:00"),
                            (2, "PAID", "99.99", "2026-11-01 09:30:00")]), p1 / "part-00000.parquet")
    pq.write_table(_orders([(3, "SHIPPED", "5.00", "2026-11-02 10:00:00")]), p2 / "part-00000.parquet")
    pq.write_table(_orders([(4, "NEW", "1.00", "2026-11-02 11:00:00")]), p2 / "part-00001.parquet")
    # Spark leftovers Athena ignores: markers, temporary attempts.
    (p2 / "_SUCCESS").write_bytes(b"")
    (p2 / "_temporary" / "0").mkdir(parents=True)
    pq.write_table(_orders([(98, "NEW", "7.00", "2026-11-02 12:00:00")]),
                   p2 / "_temporary" / "0" / "part-00002.parquet")
    pq.write_table(_orders([(99, "NEW", "1.00", "2026-11-03 08:00:00")]), stray / "part-00000.parquet")

    glue.create_database(DatabaseInput={"Name": "sales"})
    _create_table(glue, "sales", "orders", root, ORDER_COLUMNS, ORDER_KEYS)
    _add_partition(glue, "sales", "orders", ["2026-11-01", "run-1"], str(p1))
    _add_partition(glue, "sales", "orders", ["2026-11-02", "run-1"], p2.as_uri())
    _create_table(glue, "sales", "orders_quarantine", tmp_path / "quarantine",
                  [{"Name": "raw_record", "Type": "string"}, {"Name": "amount", "Type": "decimal(12,2)"}],
                  [{"Name": "lake_run_id", "Type": "string"}, {"Name": "attempt", "Type": "int"}])
    return root


def test_only_registered_partitions_are_visible(glue: Any, lake: Path) -> None:
    athena = LocalAthena(glue)
    athena.refresh()
    rows = athena.query(
        "SELECT order_id, status, amount, order_date, lake_run_id FROM sales.orders ORDER BY order_id"
    )
    assert rows == [
        (1, "NEW", Decimal("10.50"), dt.date(2026, 11, 1), "run-1"),
        (2, "PAID", Decimal("99.99"), dt.date(2026, 11, 1), "run-1"),
        (3, "SHIPPED", Decimal("5.00"), dt.date(2026, 11, 2), "run-1"),
        (4, "NEW", Decimal("1.00"), dt.date(2026, 11, 2), "run-1"),
    ]
    assert sorted(athena.tables()) == ["sales.orders", "sales.orders_quarantine"]


def test_partition_columns_take_catalog_types(glue: Any, lake: Path) -> None:
    athena = LocalAthena(glue, ["sales"])
    header, rows = athena.query_with_header(
        "SELECT typeof(order_date) AS d, typeof(lake_run_id) AS r, typeof(amount) AS a, typeof(updated_at) AS u, "
        "min(updated_at) AS first_update FROM sales.orders GROUP BY ALL"
    )
    assert header == ["d", "r", "a", "u", "first_update"]
    assert rows == [("DATE", "VARCHAR", "DECIMAL(12,2)", "TIMESTAMP", dt.datetime(2026, 11, 1, 8, 0))]
    by_day = athena.query(
        "SELECT order_date, count(*), sum(amount) FROM sales.orders "
        "WHERE order_date >= DATE '2026-11-02' GROUP BY 1"
    )
    assert by_day == [(dt.date(2026, 11, 2), 2, Decimal("6.00"))]


def test_newly_registered_partition_appears_after_refresh(glue: Any, lake: Path) -> None:
    athena = LocalAthena(glue)
    assert athena.query("SELECT count(*) FROM sales.orders") == [(4,)]
    stray = lake / "order_date=2026-11-03" / "lake_run_id=run-2"
    _add_partition(glue, "sales", "orders", ["2026-11-03", "run-2"], f"file:{stray}")
    assert athena.query("SELECT count(*) FROM sales.orders") == [(4,)]  # still the old snapshot
    athena.refresh()
    assert athena.query(
        "SELECT order_id, lake_run_id FROM sales.orders WHERE order_date = DATE '2026-11-03'"
    ) == [(99, "run-2")]


def test_empty_table_has_typed_columns(glue: Any, lake: Path) -> None:
    athena = LocalAthena(glue)
    assert athena.query("SELECT * FROM sales.orders_quarantine") == []
    described = athena.query("DESCRIBE sales.orders_quarantine")
    assert [(r[0], r[1]) for r in described] == [
        ("raw_record", "VARCHAR"),
        ("amount", "DECIMAL(12,2)"),
        ("lake_run_id", "VARCHAR"),
        ("attempt", "INTEGER"),
    ]


def test_registered_partition_without_files_is_empty(glue: Any, lake: Path, tmp_path: Path) -> None:
    _add_partition(glue, "sales", "orders", ["2026-11-04", "run-3"], str(tmp_path / "nowhere"))
    athena = LocalAthena(glue)
    assert athena.query("SELECT count(*) FROM sales.orders") == [(4,)]


def test_unpartitioned_table_and_added_column(glue: Any, tmp_path: Path) -> None:
    location = tmp_path / "dims" / "countries"
    location.mkdir(parents=True)
    pq.write_table(pa.table({"code": ["DE", "FR"]}), location / "a.parquet")
    pq.write_table(pa.table({"code": ["GB"], "name": ["United Kingdom"]}), location / "b.parquet")
    glue.create_database(DatabaseInput={"Name": "ref"})
    _create_table(glue, "ref", "countries", location,
                  [{"Name": "code", "Type": "string"}, {"Name": "name", "Type": "string"},
                   {"Name": "population", "Type": "bigint"}], [])
    athena = LocalAthena(glue)
    assert athena.query("SELECT code, name, population FROM ref.countries ORDER BY code") == [
        ("DE", None, None),
        ("FR", None, None),
        ("GB", "United Kingdom", None),
    ]


def test_partition_missing_a_new_column_reads_nulls(glue: Any, lake: Path) -> None:
    table = glue.get_table(DatabaseName="sales", Name="orders")["Table"]
    sd = dict(table["StorageDescriptor"])
    sd["Columns"] = [*ORDER_COLUMNS, {"Name": "channel", "Type": "string"}]
    glue.update_table(
        DatabaseName="sales",
        TableInput={"Name": "orders", "StorageDescriptor": sd, "PartitionKeys": ORDER_KEYS,
                    "Parameters": table.get("Parameters", {})},
    )
    athena = LocalAthena(glue)
    assert athena.query("SELECT count(*), count(channel) FROM sales.orders") == [(4, 0)]


def test_many_partitions_are_paginated(glue: Any, tmp_path: Path) -> None:
    glue.create_database(DatabaseInput={"Name": "plant"})
    root = tmp_path / "readings"
    keys = [{"Name": "reading_date", "Type": "date"}, {"Name": "lake_run_id", "Type": "string"}]
    _create_table(glue, "plant", "readings", root, [{"Name": "n", "Type": "int"}], keys)
    for i in range(30):
        part = root / f"p{i}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"n": pa.array([i], pa.int32())}), part / "x.parquet")
        glue.create_partition(
            DatabaseName="plant", TableName="readings",
            PartitionInput={"Values": [str(dt.date(2026, 1, 1) + dt.timedelta(days=i)), "r"],
                            "StorageDescriptor": {"Location": str(part), **PARQUET_SD}},
        )
    # moto answers GetPartitions in one page whatever MaxResults says: cut its answer into pages
    # of 7 linked by NextToken, as Glue pages, so a reader that stops after one page loses rows
    pages: list[int] = []

    def keep_token(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["offset"] = int(params.get("NextToken") or 0)

    def one_page(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        start = context["offset"]
        pages.append(start)
        parsed["Partitions"] = parsed["Partitions"][start:start + 7]
        parsed.pop("NextToken", None)
        if start + 7 < 30:
            parsed["NextToken"] = str(start + 7)

    glue.meta.events.register("before-parameter-build.glue.GetPartitions", keep_token)
    glue.meta.events.register("after-call.glue.GetPartitions", one_page)
    athena = LocalAthena(glue, ["plant"])
    assert athena.query("SELECT count(*), sum(n), max(reading_date) FROM plant.readings") == [
        (30, sum(range(30)), dt.date(2026, 1, 30))
    ]
    assert pages[:5] == [0, 7, 14, 21, 28]


def test_type_mapping_and_locations() -> None:
    assert duckdb_type("string") == "VARCHAR"
    assert duckdb_type("int") == "INTEGER"
    assert duckdb_type("bigint") == "BIGINT"
    assert duckdb_type("smallint") == "SMALLINT"
    assert duckdb_type("double") == "DOUBLE"
    assert duckdb_type("float") == "FLOAT"
    assert duckdb_type("boolean") == "BOOLEAN"
    assert duckdb_type("date") == "DATE"
    assert duckdb_type("timestamp") == "TIMESTAMP"
    assert duckdb_type("decimal(10, 3)") == "DECIMAL(10,3)"
    assert duckdb_type("varchar(20)") == "VARCHAR"
    assert duckdb_type("array<string>") is None
    assert local_path("/data/lake") == Path("/data/lake")
    assert local_path("file:///data/lake") == Path("/data/lake")
    assert local_path("file:/data/lake") == Path("/data/lake")
    assert local_path("s3://bucket/lake") is None


def test_format_table() -> None:
    text = format_table(
        ["country", "orders", "revenue", "first_day"],
        [("DE", 12, Decimal("1234.50"), dt.date(2026, 11, 1)), ("FR", 3, None, None)],
    )
    assert text.splitlines() == [
        "country | orders | revenue | first_day",
        "--------+--------+---------+-----------",
        "DE      |     12 | 1234.50 | 2026-11-01",
        "FR      |      3 |    NULL | NULL",
        "(2 rows)",
    ]
    assert format_table(["x"], []).splitlines()[-1] == "(0 rows)"
    assert LocalAthena.format_table(["x"], [(1,)]).endswith("(1 row)")


def test_complex_columns_no_file_backs_keep_their_type(glue: Any, tmp_path: Path) -> None:
    """An empty quarantine table (its rows expired, or none yet) and files written before a
    complex column was added: UNNEST and field access still work, as in Athena."""
    violations = "array<struct<rule:string,action:string,detail:string>>"
    glue.create_database(DatabaseInput={"Name": "q"})
    _create_table(glue, "q", "empty", tmp_path / "none", [{"Name": "lake_violations", "Type": violations}], [])
    older = tmp_path / "older"
    older.mkdir()
    pq.write_table(pa.table({"code": ["DE"]}), older / "a.parquet")
    _create_table(glue, "q", "older", older, [{"Name": "code", "Type": "string"},
                                              {"Name": "tags", "Type": "map<string,array<int>>"},
                                              {"Name": "lake_violations", "Type": violations}], [])
    athena = LocalAthena(glue)
    assert athena.query("SELECT v.rule, count(*) FROM q.empty, UNNEST(lake_violations) AS t(v) GROUP BY 1") == []
    assert athena.query("SELECT code, tags, lake_violations[1].rule FROM q.older") == [("DE", None, None)]
    assert [(r[0], r[1]) for r in athena.query("DESCRIBE q.older")] == [
        ("code", "VARCHAR"), ("tags", "MAP(VARCHAR, INTEGER[])"),
        ("lake_violations", 'STRUCT("rule" VARCHAR, "action" VARCHAR, detail VARCHAR)[]')]


def test_databases_duckdb_keeps_for_itself_are_left_out_with_a_warning(glue: Any, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """`temp`, `system` and `memory` are DuckDB catalogs, `information_schema` a system schema:
    the other databases stay queryable."""
    location = tmp_path / "t"
    location.mkdir()
    pq.write_table(pa.table({"code": ["DE"]}), location / "a.parquet")
    for database in ("temp", "information_schema", "ref"):
        glue.create_database(DatabaseInput={"Name": database})
        _create_table(glue, database, "countries", location, [{"Name": "code", "Type": "string"}], [])
    with caplog.at_level("WARNING"):
        athena = LocalAthena(glue)
        tables = athena.tables()
    assert "ref.countries" in tables and not [t for t in tables if t.split(".")[0] in ("temp", "information_schema")]
    assert athena.query("SELECT code FROM ref.countries") == [("DE",)]
    left_out = sorted(r.getMessage().split(" is left out")[0] for r in caplog.records if "is left out" in r.getMessage())
    assert left_out == ["Glue database information_schema", "Glue database temp"]
