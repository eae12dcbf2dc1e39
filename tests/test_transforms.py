"""The pure transforms, on small DataFrames, asserted on content."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake_ingest import Contract
from lake_ingest._contract import SOURCE_FILE_COL
from lake_ingest._transforms import (
    CORRUPT_COL,
    curated,
    observed_metrics,
    quarantine,
    quarantine_metrics,
    rule_names,
    typed_columns,
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


def test_another_ingest_time_compiles_no_new_code(spark):
    """Every row carries the run's ingest time, and a second run with another time runs the code
    the first one compiled (Spark caches generated classes by their source, and a
    timestamp literal would be written into it)."""
    rows = [(str(i), "05/11/2026", "1", "a", None, None, None, f"f{i % 3}") for i in range(60)]
    compiled = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    seen = []
    for at in (NOW, NOW + dt.timedelta(hours=1, microseconds=7)):
        before = compiled.getCount()
        out = curated(validate(frame(spark, rows).repartition(3), CONTRACT, "r1", at), CONTRACT)
        times = out.groupBy("lake_ingested_at").count().collect()
        seen.append((compiled.getCount() - before, {(r["lake_ingested_at"], r["count"]) for r in times}))
    (first_compiled, first), (second_compiled, second) = seen
    assert first == {(NOW, 60)}
    assert second == {(NOW + dt.timedelta(hours=1, microseconds=7), 60)}
    assert first_compiled > 0 and second_compiled == 0


def test_text_with_replaced_bytes_cannot_be_read_as_a_string(spark):
    """Spark's CSV reader puts U+FFFD where bytes were not valid text; such a string value fails
    its conversion like a number that is not one, and the rules do not report it again."""
    good, bad = run(spark, [("1", "05/11/2026", "1", "a", "M\ufffdller@y.z", None, None, "f"),
                            ("2", "05/11/2026", "1", "\ufffd", None, None, None, "f"),
                            ("3", "05/11/2026", "1", "b", "ok@y.z", None, None, "f")])
    assert list(good) == [3]
    assert bad == [("1", ["type:email"]), ("2", ["type:kind"])]
    detail = quarantine(validate(frame(spark, [("2", "05/11/2026", "1", "\ufffd", None, None, None, "f")]),
                                 CONTRACT, "r1", NOW), CONTRACT).collect()[0]["lake_violations"][0]["detail"]
    assert detail == "cannot read kind='\ufffd' as string: bytes that are not valid UTF-8"


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


def test_messages_and_null_markers_keep_quotes_and_backslashes(spark):
    """Messages and null markers are SQL text: a quote or backslash in a source column's name, a
    null marker (MySQL's \\N) or a regex pattern reaches the row as written."""
    contract = Contract.from_dict({
        "dataset_id": "q", "source": {"prefix": "q/", "pattern": "*.csv"},
        "format": {"type": "csv", "null_values": ["", "\\N", "n'a"]},
        "columns": [{"name": "id", "type": "bigint", "source": "it's \\id"},
                    {"name": "code", "type": "string"}],
        "target": {"database": "db", "table": "q"},
        "quality": [{"name": "code_ok", "type": "regex", "column": "code", "pattern": "^\\d{2}'$",
                     "action": "reject"}],
    })
    schema = T.StructType([T.StructField(n, T.StringType()) for n in ("it's \\id", "code", CORRUPT_COL)])
    rows = [("x'\\1", "12'", None), ("2", "\\N", None), ("n'a", "1\\2", None)]
    out = validate(spark.createDataFrame(rows, schema), contract, "r1", NOW)
    assert [(r["id"], r["code"]) for r in curated(out, contract).collect()] == [(2, None)]
    details = sorted(v["detail"] for r in quarantine(out, contract).collect() for v in r["lake_violations"])
    assert details == ["cannot read it's \\id='x\'\\1' as bigint", "code='1\\2' does not match ^\\d{2}'$"]


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
    assert m["rule:amount_ok"] == 1 and "rule:kind_ok" not in m  # blocking rules: counted in quarantine
    moved = Observation("q")
    assert quarantine(out, CONTRACT).observe(moved, *quarantine_metrics(CONTRACT)).count() == 1
    q = moved.get
    assert q["rule:kind_ok"] == 1 and q["rule:malformed"] == 0 and q["rule:type:id"] == 0
    assert "rule:amount_ok" not in q
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


def _validated_x(spark, columns, rules, rows):
    """``validate`` over rows of (id, x) text under a contract of ``id`` and ``columns``."""
    contract = Contract.from_dict({**_doc_without_dedupe(), "columns": [
        {"name": "id", "type": "bigint", "nullable": False, "source": "ID"}, *columns], "quality": rules})
    schema = T.StructType([T.StructField(n, T.StringType()) for n in ("ID", "x", CORRUPT_COL, SOURCE_FILE_COL)])
    return validate(spark.createDataFrame([(i, x, None, "f") for i, x in rows], schema), contract, "r", NOW), contract


def _rule_outcome(spark, columns, rules, rows):
    """Curated ids and (id, violated rules) of rows of (id, x) text under a one-column contract."""
    out, contract = _validated_x(spark, columns, rules, rows)
    good = sorted(r["id"] for r in curated(out, contract).collect())
    bad = sorted((r["id"], sorted(v["rule"] for v in r["lake_violations"]))
                 for r in quarantine(out, contract).collect())
    return good, bad


def test_a_not_null_rule_reads_the_value_before_its_conversion(spark):
    """A value that is there but does not convert fails its type check only: a not_null rule whose
    action is fail used to fail the run on it, naming a null that was not there."""
    good, bad = _rule_outcome(spark, [{"name": "x", "type": "decimal(8,2)", "source": "x"}],
                              [{"name": "x_present", "type": "not_null", "column": "x", "action": "reject"}],
                              [("1", "12.5"), ("2", "12.5x"), ("3", None)])
    assert (good, bad) == ([1], [("2", ["type:x"]), ("3", ["x_present"])])


def test_allowed_values_beyond_64_bits_and_float_range_bounds(spark):
    """An integer beyond 64 bits is no literal Spark takes: as an allowed value of a double column
    it stopped the run with a py4j error. A float column compared with a double bound rejected
    0.1 under max 0.1 (0.1 as a float is 0.100000001...)."""
    good, bad = _rule_outcome(spark, [{"name": "x", "type": "double"}],
                              [{"name": "x_ok", "type": "allowed_values", "column": "x",
                                "values": [1.5, 100000000000000000000], "action": "reject"}],
                              [("1", "1.5"), ("2", "1e20"), ("3", "2")])
    assert (good, bad) == ([1, 2], [("3", ["x_ok"])])
    good, bad = _rule_outcome(spark, [{"name": "x", "type": "float"}],
                              [{"name": "x_ok", "type": "range", "column": "x", "min": 0.1, "max": 0.7,
                                "action": "reject"}],
                              [("1", "0.1"), ("2", "0.7"), ("3", "0.71"), ("4", "0.09")])
    assert (good, bad) == ([1, 2], [("3", ["x_ok"]), ("4", ["x_ok"])])


def _converted(spark, column, value):
    """The curated values of one row's ``x`` under ``column``, and the quarantine's (id, rules)."""
    out, contract = _validated_x(spark, [column], [], [("1", value)])
    kept = [r["x"] for r in curated(out, contract).collect()]
    rejected = [(r["id"], r["x"], [v["rule"] for v in r["lake_violations"]]) for r in quarantine(out, contract).collect()]
    return kept, rejected


def _kept_or_rejected(kept, rejected, value, expected):
    """A value kept as ``expected``, or (None) rejected by its type check with its text kept."""
    if expected is None:
        assert (kept, rejected) == ([], [("1", value, ["type:x"])])
    else:
        assert (kept, rejected) == ([expected], [])


@pytest.mark.parametrize(("value", "ok"), [("true", True), ("no", False), ("maybe", None)])
def test_boolean_cast(spark, value, ok):
    kept, rejected = _converted(spark, {"name": "x", "type": "boolean"}, value)
    _kept_or_rejected(kept, rejected, value, ok)


@pytest.mark.parametrize(("ctype", "value", "kept"), [
    ("float", "1.5", 1.5), ("float", "3.4e38", 3.4e38), ("float", "3.5e38", None), ("double", "3.5e38", 3.5e38),
    ("double", "1e400", None), ("double", "-1e309", None), ("float", "Infinity", float("inf")),
    ("double", " -inf ", float("-inf")), ("double", "abc", None)])
def test_text_that_overflows_a_float_is_rejected_not_infinite(spark, ctype, value, kept):
    """'1e400' reads as Infinity: that is lost information, rejected like any failed conversion;
    text that says infinity is kept."""
    got, rejected = _converted(spark, {"name": "x", "type": ctype}, value)
    _kept_or_rejected(got, rejected, value, None if kept is None else pytest.approx(kept, rel=1e-7))


@pytest.mark.parametrize(("ctype", "value", "kept"), [
    ("date", "2026-01-05", dt.date(2026, 1, 5)), ("date", " 2026-01-05 ", dt.date(2026, 1, 5)),
    ("date", "\t2026-01-05\t", dt.date(2026, 1, 5)),
    ("date", "2026-01-05 garbage", None), ("date", "2026", None), ("date", "2026-7", None),
    ("date", "2026-1-5", None), ("date", "2026-01-05T23:30:00-05:00", None), ("date", "2026-02-30", None),
    ("timestamp", "2026-01-05 10:00:00", dt.datetime(2026, 1, 5, 10)),
    ("timestamp", "2026-01-05T23:30:00-05:00", dt.datetime(2026, 1, 6, 4, 30)),
    ("timestamp", "2026-01-05", dt.datetime(2026, 1, 5)), ("timestamp", "2026", None),
    ("timestamp", "2026-7", None), ("timestamp", "2026-01-05 garbage", None)])
def test_dates_without_a_format_read_iso_text_only(spark, ctype, value, kept):
    """Without a format, a date column reads an ISO date and a timestamp column an ISO date with
    an optional time; Spark's cast alone also reads '2026', '2026-7' and a date from any text
    that starts with one."""
    got, rejected = _converted(spark, {"name": "x", "type": ctype}, value)
    _kept_or_rejected(got, rejected, value, kept)


#: (column, text, the instant it names in Europe/Berlin, whether the text names its zone itself)
_LOCAL_TIMES = [
    ("local", "2026-01-05 10:00:00", dt.datetime(2026, 1, 5, 9), False),       # CET, UTC+1
    ("local", "2026-07-05 10:00:00", dt.datetime(2026, 7, 5, 8), False),       # CEST, UTC+2
    ("local", "2026-03-29 02:30:00", dt.datetime(2026, 3, 29, 1, 30), False),  # skipped: read as 03:30 CEST
    ("local", "2026-10-25 02:30:00", dt.datetime(2026, 10, 25, 0, 30), False),  # repeated: the first, CEST
    ("iso", "2026-07-05T10:00:00", dt.datetime(2026, 7, 5, 8), False),
    ("iso", "2026-07-05 10:00", dt.datetime(2026, 7, 5, 8), False),
    ("iso", "2026-07-05", dt.datetime(2026, 7, 4, 22), False),
    ("iso", "2026-07-05T10:00:00Z", dt.datetime(2026, 7, 5, 10), True),
    ("iso", "2026-07-05T10:00:00+01:00", dt.datetime(2026, 7, 5, 9), True),
    ("iso", "2026-07-05T10:00:00.5-0100", dt.datetime(2026, 7, 5, 11, 0, 0, 500000), True),
    ("iso", "2026-07-05 10:00:00 UTC", dt.datetime(2026, 7, 5, 10), True),
    ("iso", "2026-07-05T10:00:00 America/New_York", dt.datetime(2026, 7, 5, 14), True),
    ("iso", "2026-07-05T10:00:00 GMT+01:00", dt.datetime(2026, 7, 5, 9), True),
    ("iso", "2026-07-05T10:00:00UTC-2", dt.datetime(2026, 7, 5, 12), True),
    ("utc", "2026-07-05T10:00:00Z", dt.datetime(2026, 7, 5, 10), True),  # a quoted 'Z': written in UTC
    ("digits", "20260705100000", dt.datetime(2026, 7, 5, 8), False),
    ("zoned", "2026-07-05T10:00:00+01:00", dt.datetime(2026, 7, 5, 9), True),
    ("zoned", "2026-07-05T10:00:00Z", dt.datetime(2026, 7, 5, 10), True)]


def test_timestamps_without_an_offset_are_local_times_of_the_contracts_zone(spark):
    """With ``format.time_zone``, a timestamp whose text names no zone or offset is the local time
    of that zone (summer time included) and is stored as the instant in UTC; text that names one
    keeps it, whether the pattern reads it or the ISO reading finds it after the time. Without
    the setting, the same text is read as UTC."""
    columns = [{"name": "id", "type": "bigint", "nullable": False, "source": "ID"},
               {"name": "local", "type": "timestamp", "format": "yyyy-MM-dd HH:mm:ss"},
               {"name": "iso", "type": "timestamp"},
               {"name": "zoned", "type": "timestamp", "format": "yyyy-MM-dd'T'HH:mm:ssXXX"},
               {"name": "utc", "type": "timestamp", "format": "yyyy-MM-dd'T'HH:mm:ss'Z'"},
               {"name": "digits", "type": "timestamp", "format": "yyyyMMddHHmmss"}]
    names = ("ID", "local", "iso", "zoned", "utc", "digits", CORRUPT_COL, SOURCE_FILE_COL)
    schema = T.StructType([T.StructField(n, T.LongType() if n == "digits" else T.StringType()) for n in names])
    rows = [{**dict.fromkeys(names), "ID": str(i), SOURCE_FILE_COL: "f", column: int(text) if column == "digits" else text}
            for i, (column, text, _, _) in enumerate(_LOCAL_TIMES)]

    def read(fmt):
        contract = Contract.from_dict({**_doc_without_dedupe(), "format": fmt, "columns": columns})
        out = curated(validate(spark.createDataFrame(rows, schema), contract, "r", NOW), contract)
        got = {r["id"]: r for r in out.collect()}
        return [got[i][column] for i, (column, *_) in enumerate(_LOCAL_TIMES)]

    assert read({"type": "csv", "time_zone": "Europe/Berlin"}) == [utc for _, _, utc, _ in _LOCAL_TIMES]
    naive = {"local": "%Y-%m-%d %H:%M:%S", "digits": "%Y%m%d%H%M%S"}  # "iso": datetime.fromisoformat
    as_utc = [utc if names else (dt.datetime.strptime(text, naive[column]) if column in naive
                                 else dt.datetime.fromisoformat(text))
              for column, text, utc, names in _LOCAL_TIMES]
    assert read({"type": "csv"}) == as_utc


def test_allowed_timestamps_are_read_in_the_contracts_zone_too(spark):
    """An allowed value of a timestamp column (ISO text without a zone) is a local time of the
    contract's zone, as the data's are."""
    columns = [{"name": "id", "type": "bigint", "nullable": False, "source": "ID"},
               {"name": "ts", "type": "timestamp", "format": "yyyy-MM-dd HH:mm:ss"}]
    rule = {"name": "known_times", "type": "allowed_values", "column": "ts", "action": "reject",
            "values": ["2026-07-05 10:00:00", "2026-07-05 14:00:00"]}
    contract = Contract.from_dict({**_doc_without_dedupe(), "format": {"type": "csv", "time_zone": "Europe/Berlin"},
                                   "columns": columns, "quality": [rule]})
    schema = T.StructType([T.StructField(n, T.StringType()) for n in ("ID", "ts", CORRUPT_COL, SOURCE_FILE_COL)])
    rows = [(str(i), t, None, "f") for i, t in enumerate(["2026-07-05 10:00:00", "2026-07-05 14:00:00",
                                                          "2026-07-05 12:00:00"])]
    out = validate(spark.createDataFrame(rows, schema), contract, "r", NOW)
    assert sorted((r["id"], r["ts"]) for r in curated(out, contract).collect()) == [
        (0, dt.datetime(2026, 7, 5, 8)), (1, dt.datetime(2026, 7, 5, 12))]  # CEST, UTC+2
    assert [(r["id"], [v["rule"] for v in r["lake_violations"]]) for r in quarantine(out, contract).collect()] == [
        ("2", ["known_times"])]  # the quarantine keeps the text


def test_a_zone_java_does_not_know_stops_the_run_before_it_reads(spark):
    """Python's zone database and Java's differ in places; Spark converts with Java's."""
    from dataclasses import replace

    from lake_ingest._contract import ContractError
    from lake_ingest._job import _check_patterns

    contract = Contract.from_dict({**_doc_without_dedupe(), "format": {"type": "csv", "time_zone": "Europe/Berlin"}})
    _check_patterns(spark, contract)
    unknown = replace(contract, format=replace(contract.format, time_zone="Mars/Olympus_Mons"))
    with pytest.raises(ContractError, match=r"format\.time_zone: 'Mars/Olympus_Mons' is not a zone Java knows"):
        _check_patterns(spark, unknown)


def test_typed_timestamps_without_a_zone_are_local_times_too(spark):
    """From Parquet: a timestamp without a zone (``TIMESTAMP_NTZ``) and a date are local times of
    the contract's zone; a timestamp adjusted to UTC is an instant already and is kept."""
    from lake_ingest._contract import Column
    from lake_ingest._transforms import local_to_utc

    ntz = T.StructType([T.StructField("t", T.TimestampNTZType()), T.StructField("d", T.DateType()),
                        T.StructField("u", T.TimestampType())])
    df = spark.createDataFrame([(dt.datetime(2026, 7, 5, 10), dt.date(2026, 1, 5), dt.datetime(2026, 7, 5, 10))], ntz)
    col = Column(name="x", type="timestamp")
    got = df.select(local_to_utc(F.col("t").cast("timestamp"), col, T.TimestampNTZType(), "Europe/Berlin").alias("t"),
                    local_to_utc(F.col("d").cast("timestamp"), col, T.DateType(), "Europe/Berlin").alias("d"),
                    local_to_utc(F.col("u"), col, T.TimestampType(), "Europe/Berlin").alias("u")).first()
    assert (got["t"], got["d"], got["u"]) == (dt.datetime(2026, 7, 5, 8), dt.datetime(2026, 1, 4, 23),
                                              dt.datetime(2026, 7, 5, 10))


def _variants(exact: str) -> list[str]:
    """Text around one exact value: every character replaced, inserted or removed, pairs of
    characters changed, and additions before and after."""
    chars = list("0159 TZ+-.:\tx/") + ["\u00e9", "\u0000"]
    out = {exact}
    for i in range(len(exact)):
        for ch in chars:
            out |= {exact[:i] + ch + exact[i + 1:], exact[:i] + ch + exact[i:]}
        out.add(exact[:i] + exact[i + 1:])
    for i, j in itertools.combinations(range(len(exact)), 2):
        for a, b in itertools.product("0 Z+.", "09 Z+-:"):
            text = list(exact)
            text[i], text[j] = a, b
            out.add("".join(text))
    for extra in [*chars, "Z", "+01", ".5", "Z  "]:
        out |= {exact + extra, extra + exact}
    return sorted(out | {exact.replace("2026", "12026"), exact.replace("2026", "0000"), "", "x"})


@pytest.mark.parametrize(("type_name", "pattern", "exact"), [
    ("date", "yyyy-MM-dd", "2026-11-05"),
    ("date", "yyyy-MM-dd HH:mm:ss", "2026-11-05 10:42:59"),  # the time is checked too
    ("date", "yyyy-MM-dd'T'HH:mm:ss", "2026-11-05T10:42:59"),
    ("timestamp", "yyyy-MM-dd", "2026-11-05"),
    ("timestamp", "yyyy-MM-dd HH:mm:ss", "2026-11-05 10:42:59"),
    ("timestamp", "yyyy-MM-dd'T'HH:mm:ss", "2026-11-05T10:42:59"),
])
def test_iso_fast_path_gives_the_patterns_result(spark, type_name, pattern, exact):
    """Thousands of near misses (2026-1-5, a zone or fraction after the seconds, spaces, other
    separators) are read exactly as the pattern formatter reads them."""
    from pyspark.sql import functions as F

    from lake_ingest._transforms import parse_datetime

    texts = [*_variants(exact), None]
    df = spark.createDataFrame([(t,) for t in texts], "t string")
    rows = df.select("t", parse_datetime("t", type_name, pattern).cast("string").alias("fast"),
                     F.try_to_timestamp("t", F.lit(pattern)).cast(type_name).cast("string").alias("ref")).collect()
    assert [(r.t, r.fast) for r in rows if r.fast != r.ref] == []
    accepted = {r.t for r in rows if r.fast is not None}
    assert exact in accepted
    assert 20 < len(accepted) < len(texts) // 10  # valid neighbours (other digits) and many rejections
    for lenient in (exact[:-1] + "Z", exact + " ", exact[:5] + "1-05" + exact[10:], exact + ".5"):
        assert lenient not in accepted


# ------------------------------------------------------------ repeated keys, pending rows

UNIQUE_CONTRACT = Contract.from_dict({
    **_doc_without_dedupe(),
    "deduplicate": {"order_by": ["seen"]},
    "columns": [{**c, "nullable": False} if c["name"] == "day" else c for c in _doc_without_dedupe()["columns"]],
    "partition_by": ["day"],
    "quality": [
        {"name": "kind_ok", "type": "allowed_values", "column": "kind", "values": ["a", "b"], "action": "reject"},
        {"name": "email_unique", "type": "unique", "columns": ["email"], "action": "reject"},
        {"name": "amount_small", "type": "range", "column": "amount", "max": 100, "action": "warn"},
    ],
})

#: ID, day, amount, kind, email, seen, corrupt, source file
REPEATS = [
    ("1", "05/11/2026", "1", "a", "p@x", "2026-11-05 10:00:00", None, "f1"),
    ("1", "05/11/2026", "2", "a", "q@x", "2026-11-05 12:00:00", None, "f2"),      # latest of id 1
    ("1", "05/11/2026", "3", "zzz", "r@x", "2026-11-05 13:00:00", None, "f2"),    # newer but invalid
    ("2", "06/11/2026", "500", "b", "s@x", "2026-11-05 10:00:00", None, "f1"),    # warned, unique
    ("3", "06/11/2026", "4", "a", "t@x", None, None, "f1"),
    ("4", "06/11/2026", "5", "b", "t@x", None, None, "f2"),                       # e-mail shared with id 3
    ("5", "07/11/2026", "900", "a", "u@x", "2026-11-05 10:00:00", None, "f1"),     # warned and superseded
    ("5", "07/11/2026", "6", "a", "v@x", "2026-11-05 11:00:00", None, "f1"),
    ("x", "07/11/2026", "7", "a", "w@x", None, None, "f1"),                       # id not a number
    ("x", "07/11/2026", "8", "a", "y@x", None, None, "f1"),
    ("6", "07/11/2026", "9", "a", "z@x", None, None, "f3"),                       # nothing repeated
]


def _settled(spark, contract, rows):
    """The job's way, without the files: find repeated keys, stage, settle the pending rows."""
    from pyspark.sql import functions as F

    from lake_ingest._transforms import (
        VALID_COL,
        drop_metric_columns,
        repeated_keys,
        resolve_pending,
        staged,
        window_key_sets,
    )

    raw = frame(spark, rows)
    repeated = {keys: repeated_keys(raw, contract, keys) for keys in window_key_sets(contract)}
    out = staged(validate(raw, contract, "r", NOW, repeated=repeated), contract).drop("lake_run_id")
    pending = out.filter(F.col(VALID_COL) == "pending").drop(VALID_COL)
    settled = drop_metric_columns(resolve_pending(pending, contract)).select(*out.columns)
    return out.filter(F.col(VALID_COL) != "pending").unionByName(settled), pending.count()


def _outputs(staged_df, contract):
    from pyspark.sql import functions as F

    from lake_ingest._transforms import quarantine_rows

    valid = sorted((r["id"], r["amount"], r["lake_source_file"], r["day"])
                   for r in staged_df.filter(F.col("lake_valid") == "true").collect())
    rejected = quarantine_rows(staged_df.withColumn("lake_run_id", F.lit("r")), contract).collect()
    bad = sorted((r["id"], r["amount"], r["lake_raw_record"], tuple(sorted(v["rule"] for v in r["lake_violations"])))
                 for r in rejected)
    return valid, bad


def test_repeated_keys_are_the_keys_of_more_than_one_row(spark):
    from lake_ingest._transforms import repeated_keys

    raw = frame(spark, REPEATS + [(None, "05/11/2026", "1", "a", None, None, None, "f"),
                                  ("NULL", "05/11/2026", "1", "a", None, None, None, "f")])
    assert sorted((r[0] for r in repeated_keys(raw, UNIQUE_CONTRACT, ("id",)).collect()), key=str) == [1, 5, None]  # "x" and null both read as null
    emails = repeated_keys(raw, UNIQUE_CONTRACT, ("email",)).collect()
    assert sorted(r[0] for r in emails if r[0]) == ["t@x"]


def test_settling_pending_rows_matches_one_window_over_all_rows(spark):
    from lake_ingest._transforms import staged

    settled, pending = _settled(spark, UNIQUE_CONTRACT, REPEATS)
    windowed = staged(validate(frame(spark, REPEATS), UNIQUE_CONTRACT, "r", NOW), UNIQUE_CONTRACT).drop("lake_run_id")
    assert _outputs(settled, UNIQUE_CONTRACT) == _outputs(windowed, UNIQUE_CONTRACT)
    assert pending == 6  # ids 1 (two valid rows), 5 (two), and the two rows sharing t@x
    valid, bad = _outputs(settled, UNIQUE_CONTRACT)
    assert valid == [(1, 2, "f2", dt.date(2026, 11, 5)), (2, 500, "f1", dt.date(2026, 11, 6)),
                     (5, 6, "f1", dt.date(2026, 11, 7)), (6, 9, "f3", dt.date(2026, 11, 7))]
    assert all(r["day"] is None for r in settled.filter("lake_valid = 'false'").collect())
    assert bad == sorted([
        ("1", "1", None, ("duplicate",)),
        ("1", "3", None, ("kind_ok",)),
        ("3", "4", None, ("email_unique",)),
        ("4", "5", None, ("email_unique",)),
        ("5", "900", None, ("amount_small", "duplicate")),   # its warning travels with it
        ("x", "7", None, ("type:id",)),
        ("x", "8", None, ("type:id",)),
    ])


REGION_CONTRACT = Contract.from_dict({
    "dataset_id": "r", "source": {"prefix": "r/", "pattern": "*.csv"}, "format": {"type": "csv"},
    "columns": [{"name": "id", "type": "bigint", "source": "ID", "nullable": False},
                {"name": "region", "type": "string", "nullable": False},
                {"name": "amount", "type": "decimal(8,2)"},
                {"name": "seen", "type": "timestamp", "format": "yyyy-MM-dd HH:mm:ss"}],
    "primary_key": ["id"], "partition_by": ["region"], "deduplicate": {"order_by": ["seen"]},
    "target": {"database": "db", "table": "r"},
    "quality": [{"name": "region_known", "type": "allowed_values", "column": "region", "values": ["eu"],
                 "action": "warn"},
                {"name": "amount_ok", "type": "range", "column": "amount", "min": 0, "action": "reject"}],
})


def test_reasons_are_spelled_out_for_the_quarantined_rows_only(spark):
    """The main pass keeps a rejected or pending row's check bits, its text as it arrived and its
    partition values; the reasons are written when the rows reach quarantine, from those. A
    partition value (null in the staged row) and an earlier warning still show in them."""
    from pyspark.sql import functions as F

    from lake_ingest._transforms import (
        QUARANTINE_COL,
        VALID_COL,
        quarantine_rows,
        repeated_keys,
        resolve_pending,
        staged,
    )

    schema = T.StructType([T.StructField(n, T.StringType()) for n in ("ID", "region", "amount", "seen", CORRUPT_COL)])
    rows = [("1", "zz", "5", "2026-11-05 10:00:00", None),    # warned, then superseded by the next row
            ("1", "eu", "6", "2026-11-05 11:00:00", None),
            ("2", "zz", "-1.5", "2026-11-05 10:00:00", None),  # warned and rejected in the main pass
            ("3", "eu", "0x1", "2026-11-05 10:00:00", None)]   # not a number
    raw = spark.createDataFrame(rows, schema).withColumn(SOURCE_FILE_COL, F.lit("f"))
    repeated = {("id",): repeated_keys(raw, REGION_CONTRACT, ("id",))}
    out = staged(validate(raw, REGION_CONTRACT, "r", NOW, repeated=repeated), REGION_CONTRACT)
    payloads = {r["amount"]: r[QUARANTINE_COL] for r in out.filter(F.col(VALID_COL) != "true").collect()}
    assert payloads[Decimal("5.00")]["raw"] is None and payloads[Decimal("5.00")]["partition"] == ["zz"]
    assert payloads[Decimal("-1.50")]["raw"] == ["2", "zz", "-1.5", "2026-11-05 10:00:00", None]
    assert out.filter(F.col(VALID_COL) != "true").filter(F.col("region").isNotNull()).count() == 0
    pending = out.filter(F.col(VALID_COL) == "pending").drop(VALID_COL)
    settled = resolve_pending(pending, REGION_CONTRACT).select(*out.columns)
    rejected = out.filter(F.col(VALID_COL) == "false").unionByName(settled.filter(F.col(VALID_COL) == "false"))
    found = sorted((r["id"], r["region"], r["amount"], [v["detail"] for v in r["lake_violations"]])
                   for r in quarantine_rows(rejected, REGION_CONTRACT).collect())
    assert found == [
        ("1", "zz", "5.00", ["region='zz' is not an allowed value",
                             "another row with the same id was kept (the latest by seen, then by file name)"]),
        ("2", "zz", "-1.5", ["region='zz' is not an allowed value", "amount=-1.50 outside [0, ]"]),
        ("3", "eu", "0x1", ["cannot read amount='0x1' as decimal(8,2)"]),
    ]


def test_settling_counts_what_it_adds(spark):
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from lake_ingest._transforms import (
        VALID_COL,
        drop_metric_columns,
        pending_metrics,
        repeated_keys,
        resolve_pending,
        staged,
    )

    raw = frame(spark, REPEATS)
    repeated = {("id",): repeated_keys(raw, UNIQUE_CONTRACT, ("id",)),
                ("email",): repeated_keys(raw, UNIQUE_CONTRACT, ("email",))}
    main = Observation("main")
    validated = validate(raw, UNIQUE_CONTRACT, "r", NOW, repeated=repeated)
    out = staged(validated.observe(main, *observed_metrics(validated, UNIQUE_CONTRACT)), UNIQUE_CONTRACT)
    pending = out.filter(F.col(VALID_COL) == "pending").drop(VALID_COL, "lake_run_id").cache()
    assert pending.count() == 6
    m = main.get
    assert (m["rows_read"], m["rows_quarantined"], m["rows_pending"], m["rows_warned"]) == (11, 3, 6, 2)
    second = Observation("settle")
    resolved = resolve_pending(pending, UNIQUE_CONTRACT)
    assert drop_metric_columns(resolved.observe(second, *pending_metrics(resolved, UNIQUE_CONTRACT))).count() == 6
    s = second.get
    assert (s["rows_quarantined"], s["rows_warned"], s["rows_failing"]) == (4, 0, 0)
    assert "rule:duplicate" not in s  # counted over the quarantine rows, with the other blocking rules


_SOURCE_TYPES = ["boolean", "tinyint", "smallint", "int", "bigint", "float", "double", "decimal(10,2)", "string",
                 "binary", "date", "timestamp", "timestamp_ntz"]
_CONTRACT_TYPES = ["string", "boolean", "tinyint", "smallint", "int", "bigint", "float", "double", "decimal(12,2)",
                   "date", "timestamp"]


def test_the_casts_spark_refuses_are_known(spark):
    """A typed Parquet column converted with a cast Spark refuses fails the analysis of the whole
    run; ``try_cast_refused`` must name exactly those pairs (checked against Spark, every pair)."""
    from pyspark.errors import AnalysisException

    from lake_ingest._transforms import try_cast_refused

    frame = spark.sql("SELECT " + ", ".join(f"CAST(NULL AS {t}) AS `{t}`" for t in _SOURCE_TYPES))
    for source, target in itertools.product(_SOURCE_TYPES, _CONTRACT_TYPES):
        try:
            refused = not frame.selectExpr(f"try_cast(`{source}` AS {target})").schema  # analysed here
        except AnalysisException:
            refused = True
        source_type = frame.schema[source].dataType
        assert try_cast_refused(source_type, target) is refused, (source, target)


def test_typed_values_of_casts_spark_refuses_are_read_as_their_text(spark):
    """Every contract type from every typed source: no pair fails the plan, and a number in a date
    column with a format is read with the format (20260102 is not seconds since 1970)."""
    from lake_ingest._transforms import exact_cast

    row = {"boolean": True, "tinyint": 5, "smallint": 5, "int": 20260102, "bigint": 5, "float": 5.0,
           "double": 5.0, "decimal(10,2)": Decimal("5.00"), "string": "5", "binary": bytearray(b"5"),
           "date": dt.date(2026, 1, 2), "timestamp": dt.datetime(2026, 1, 2), "timestamp_ntz": dt.datetime(2026, 1, 2)}
    schema = ", ".join(f"`{t}` {t}" for t in _SOURCE_TYPES)
    frame = spark.createDataFrame([tuple(row[t] for t in _SOURCE_TYPES)], schema)
    out = frame.select(*[exact_cast(s, frame.schema[s].dataType, t).alias(f"{s}->{t}")
                         for s, t in itertools.product(_SOURCE_TYPES, _CONTRACT_TYPES)]).first().asDict()
    assert out["binary->bigint"] == 5 and out["binary->decimal(12,2)"] == Decimal("5.00")
    assert out["boolean->date"] is None and out["date->int"] is None  # no such value: a type violation
    # numbers and timestamps meet as text, not as seconds since 1970 (Spark's cast)
    assert out["int->timestamp"] is None and out["bigint->timestamp"] is None  # '20260102', '5'
    assert out["timestamp->bigint"] is None and out["timestamp_ntz->bigint"] is None
    assert out["int->date"] is None and out["date->timestamp"] == dt.datetime(2026, 1, 2)
    contract = Contract.from_dict({
        "dataset_id": "n", "source": {"prefix": "n/", "pattern": "*.parquet"}, "format": {"type": "parquet"},
        "target": {"database": "db", "table": "n"}, "columns": [
            {"name": "d", "type": "date", "format": "yyyyMMdd"}, {"name": "t", "type": "timestamp", "format": "yyyyMMdd"}]})
    numbers = spark.createDataFrame([(20260102, 20260103)], "d bigint, t bigint")
    typed = typed_columns(numbers, contract).first()
    assert (typed["_typed_d"], typed["_typed_t"]) == (dt.date(2026, 1, 2), dt.datetime(2026, 1, 3))
