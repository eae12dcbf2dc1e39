"""The pure transforms, on small DataFrames, asserted on content."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import types as T

from lake_ingest import Contract
from lake_ingest._contract import SOURCE_FILE_COL
from lake_ingest._transforms import (
    CORRUPT_COL,
    curated,
    observed_metrics,
    quarantine,
    rule_names,
    validate,
)

NOW = dt.datetime(2026, 11, 26, 12, 0, 0)

CONTRACT = Contract.from_dict({
    "dataset_id": "t",
    "source": {"prefix": "t/", "pattern": "*.csv"},
    "format": {"type": "csv", "null_values": ["", "NULL"]},
    "columns": [
        {"name": "id", "type": "bigint", "nullable": False, "source": "ID"},
        {"name": "day", "type": "date", "nullable": False, "format": "dd/MM/yyyy"},
        {"name": "amount", "type": "decimal(8,2)"},
        {"name": "kind", "type": "string"},
        {"name": "email", "type": "string"},
        {"name": "seen", "type": "timestamp", "format": "yyyy-MM-dd HH:mm:ss"},
    ],
    "primary_key": ["id"],
    "partition_by": ["day"],
    "deduplicate": {"order_by": ["seen"]},
    "target": {"database": "db", "table": "t"},
    "quality": [
        {"name": "kind_ok", "type": "allowed_values", "column": "kind", "values": ["a", "b"], "action": "reject"},
        {"name": "amount_ok", "type": "range", "column": "amount", "min": 0, "max": 100, "action": "warn"},
        {"name": "email_ok", "type": "regex", "column": "email", "pattern": "^[^@]+@[^@]+$", "action": "reject"},
    ],
})

RAW_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in
                           ("ID", "day", "amount", "kind", "email", "seen", CORRUPT_COL, SOURCE_FILE_COL)])


def frame(spark, rows):
    return spark.createDataFrame(rows, RAW_SCHEMA)


def run(spark, rows):
    out = validate(frame(spark, rows), CONTRACT, "r1", NOW)
    good = {r["id"]: r.asDict() for r in curated(out, CONTRACT).collect()}
    bad = [(r["id"], sorted(v["rule"] for v in r["lake_violations"])) for r in quarantine(out, CONTRACT).collect()]
    return good, sorted(bad, key=str)


def test_casts_and_lineage(spark):
    good, bad = run(spark, [("1", "05/11/2026", "12.5", "a", "x@y.z", "2026-11-05 10:00:00", None, "f1")])
    assert bad == []
    assert good == {1: {"id": 1, "day": dt.date(2026, 11, 5), "amount": Decimal("12.50"), "kind": "a",
                        "email": "x@y.z", "seen": dt.datetime(2026, 11, 5, 10, 0), "lake_source_file": "f1",
                        "lake_ingested_at": NOW, "lake_run_id": "r1"}}


def test_each_rule_rejects_with_its_name(spark):
    rows = [
        ("1", "05/11/2026", "abc", "a", None, None, None, "f"),            # amount not a number
        ("2", "2026-11-05", "1", "a", None, None, None, "f"),             # day in the wrong format
        (None, "05/11/2026", "1", "a", None, None, None, "f"),            # id missing
        ("4", "05/11/2026", "1", "zzz", None, None, None, "f"),           # kind not allowed
        ("5", "05/11/2026", "1", "a", "not-an-email", None, None, "f"),   # regex
        ("6", "05/11/2026", "1", "NULL", None, None, None, "f"),          # null marker: fine
        ("7", None, None, None, None, None, "7,broken", "f"),             # malformed line
    ]
    good, bad = run(spark, rows)
    assert sorted(good) == [6]
    assert good[6]["kind"] is None
    assert bad == sorted([
        ("1", ["type:amount"]),
        ("2", ["type:day"]),
        (None, ["not_null:id"]),
        ("4", ["kind_ok"]),
        ("5", ["email_ok"]),
        ("7", ["malformed"]),
    ], key=str)


def test_warn_rules_keep_the_row(spark):
    good, bad = run(spark, [("1", "05/11/2026", "999", "a", None, None, None, "f")])
    assert bad == [] and good[1]["amount"] == Decimal("999.00")


def test_dedupe_keeps_latest_and_quarantines_the_rest(spark):
    rows = [
        ("1", "05/11/2026", "1", "a", None, "2026-11-05 10:00:00", None, "f1"),
        ("1", "05/11/2026", "2", "a", None, "2026-11-05 12:00:00", None, "f2"),
        ("1", "05/11/2026", "3", "a", None, "2026-11-05 11:00:00", None, "f3"),
        ("1", "05/11/2026", "4", "zzz", None, "2026-11-05 13:00:00", None, "f4"),  # newest but invalid
    ]
    good, bad = run(spark, rows)
    assert good[1]["amount"] == Decimal("2.00")
    assert bad == sorted([("1", ["duplicate"]), ("1", ["duplicate"]), ("1", ["kind_ok"])], key=str)


def test_unique_rule_flags_every_copy(spark):
    contract = Contract.from_dict({**_doc_without_dedupe(),
                                   "quality": [{"name": "uniq", "type": "unique", "columns": ["id"], "action": "reject"}]})
    rows = [("1", "05/11/2026", "1", "a", None, None, None, "f"), ("1", "05/11/2026", "2", "a", None, None, None, "f"),
            ("2", "05/11/2026", "1", "a", None, None, None, "f")]
    out = validate(frame(spark, rows), contract, "r", NOW)
    assert [r["id"] for r in curated(out, contract).collect()] == [2]
    assert sorted(r["amount"] for r in quarantine(out, contract).collect()) == ["1", "2"]


def test_observed_metrics_count_in_the_same_pass(spark):
    from pyspark.sql import Observation

    rows = [("1", "05/11/2026", "1", "a", None, None, None, "f"),
            ("2", "05/11/2026", "1", "zzz", None, None, None, "f"),
            ("3", "05/11/2026", "500", "a", None, None, None, "f")]
    out = validate(frame(spark, rows), CONTRACT, "r", NOW)
    obs = Observation("t")
    written = curated(out.observe(obs, *observed_metrics(out, CONTRACT)), CONTRACT).collect()
    m = obs.get
    assert len(written) == 2
    assert (m["rows_read"], m["rows_quarantined"], m["rows_warned"]) == (3, 1, 1)
    assert m["rule:kind_ok"] == 1 and m["rule:amount_ok"] == 1 and m["rule:malformed"] == 0
    assert set(rule_names(CONTRACT)) >= {"malformed", "type:id", "not_null:id", "kind_ok", "duplicate"}


def _doc_without_dedupe():
    return {
        "dataset_id": "u", "source": {"prefix": "u/", "pattern": "*.csv"}, "format": {"type": "csv"},
        "columns": [{"name": "id", "type": "bigint", "nullable": False, "source": "ID"},
                    {"name": "day", "type": "date", "format": "dd/MM/yyyy"}, {"name": "amount", "type": "int"},
                    {"name": "kind", "type": "string"}, {"name": "email", "type": "string"},
                    {"name": "seen", "type": "string"}],
        "primary_key": ["id"], "target": {"database": "db", "table": "u"},
    }


@pytest.mark.parametrize(("value", "ok"), [("true", True), ("no", False), ("maybe", None)])
def test_boolean_cast(spark, value, ok):
    contract = Contract.from_dict({**_doc_without_dedupe(),
                                   "columns": [{"name": "id", "type": "bigint", "nullable": False, "source": "ID"},
                                               {"name": "flag", "type": "boolean"}]})
    schema = T.StructType([T.StructField(n, T.StringType()) for n in ("ID", "flag", CORRUPT_COL, SOURCE_FILE_COL)])
    out = validate(spark.createDataFrame([("1", value, None, "f")], schema), contract, "r", NOW)
    rows = curated(out, contract).collect()
    assert (rows[0]["flag"] if rows else None) == ok
    assert len(rows) == (0 if ok is None else 1)


@pytest.mark.parametrize(("type_name", "pattern", "texts"), [
    ("date", "yyyy-MM-dd", ["2026-11-05", "2026-1-5", "2026-11-05T10:00:00", "05/11/2026", "2026-02-30", "", "x"]),
    ("timestamp", "yyyy-MM-dd HH:mm:ss", ["2026-11-05 10:00:00", "2026-11-05T10:00:00", "2026-11-05 10:00",
                                          "2026-11-05", "2026-11-05 25:00:00", "2026-11-05 10:00:00.5", None]),
    ("timestamp", "yyyy-MM-dd'T'HH:mm:ss", ["2026-11-05T10:00:00", "2026-11-05 10:00:00", "2026-11-05T10:00:00Z"]),
])
def test_iso_fast_path_is_as_strict_as_the_pattern(spark, type_name, pattern, texts):
    from pyspark.sql import functions as F

    from lake_ingest._transforms import parse_datetime

    df = spark.createDataFrame([(t,) for t in texts], "t string")
    fast = df.select(parse_datetime("t", type_name, pattern).alias("v")).collect()
    formatter = df.select(F.try_to_timestamp("t", F.lit(pattern)).cast(type_name).alias("v")).collect()
    assert [r.v for r in fast] == [r.v for r in formatter]
    assert fast[0].v is not None
