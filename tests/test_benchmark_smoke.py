"""Smoke test of the ingest benchmark at a tiny size: same valid rows everywhere, stable data."""

from __future__ import annotations

import copy
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lake_ingest import Contract

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks package lives next to tests/, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_ingest as bench  # noqa: E402

logger = logging.getLogger(__name__)

ROWS = 20_000


def _sql_list(values: Any) -> str:
    return ", ".join(f"'{v}'" for v in values)


def valid_rows(root: Path) -> int:
    """Rows of a plain (unvalidated) output that the contract accepts, counted in SQL.

    Rejecting rules and not-null columns are applied as the job applies them, then one row
    per primary key is kept among the accepted rows. A value neither plain reader could parse
    is null there (Spark) or its row is gone (DuckDB); in this data that only happens to
    ``amount``, a not-null column, so such rows are rejected either way.
    """
    contract = Contract.from_dict(bench.BENCH_CONTRACT)
    checks = [f"{c.name} IS NOT NULL" for c in contract.columns if not c.nullable]
    for rule in contract.rules:
        if rule.action != "reject":
            continue
        col = rule.columns[0]
        if rule.type == "not_null":
            checks += [f"{c} IS NOT NULL" for c in rule.columns]
        elif rule.type == "allowed_values":
            checks.append(f"({col} IS NULL OR {col} IN ({_sql_list(rule.values)}))")
        elif rule.type == "range":
            bounds = ([f"{col} >= {rule.min}"] if rule.min is not None else []) + (
                [f"{col} <= {rule.max}"] if rule.max is not None else [])
            checks.append(f"({col} IS NULL OR ({' AND '.join(bounds)}))")
        elif rule.type == "regex":
            checks.append(f"({col} IS NULL OR regexp_matches({col}, '{rule.pattern}'))")
        else:
            raise AssertionError(f"no SQL for rule type {rule.type}")
    keys = ", ".join(contract.primary_key)
    order = ", ".join(f"{c} DESC" for c in contract.dedupe_order_by)
    sql = f"""
        WITH t AS (
            SELECT {keys}, {", ".join(contract.dedupe_order_by)},
                   coalesce({" AND ".join(checks)}, false) AS ok
            FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true)
        )
        SELECT count(*) FROM (
            SELECT ok, row_number() OVER (PARTITION BY ok, {keys} ORDER BY {order}) AS rn FROM t
        ) WHERE ok AND rn = 1
    """
    with duckdb.connect() as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def partition_values(root: Path) -> set[str]:
    return {p.name for p in root.rglob(f"{bench.PARTITION_COL}=*") if p.is_dir()}


def test_contract_is_valid_and_switches_every_feature_on():
    contract = Contract.from_dict(bench.BENCH_CONTRACT)
    assert contract.dataset_id == bench.DATASET_ID
    assert contract.partition_by == (bench.PARTITION_COL,) and contract.primary_key == ("id",)
    assert contract.deduplicate and contract.dedupe_order_by == ("updated_at",)
    kinds = {(r.type, r.action) for r in contract.rules}
    assert {("allowed_values", "reject"), ("range", "reject"), ("range", "warn"),
            ("regex", "reject"), ("not_null", "reject")} <= kinds
    assert any(not c.nullable for c in contract.data_columns)
    assert all(c.format for c in contract.columns if c.type == "timestamp")
    names = [c.name for c in contract.columns]
    assert bench.spark_schema().fieldNames() == names
    assert list(bench.duckdb_columns()) == names


def test_generator_is_deterministic_and_reused(tmp_path):
    first = bench.generate(tmp_path / "a", ROWS)
    second = bench.generate(tmp_path / "b", ROWS)
    assert not first.reused and not second.reused
    assert [p.name for p in first.files] == [p.name for p in second.files]
    assert len(first.files) == bench.DEFAULT_FILES
    for a, b in zip(first.files, second.files, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    header = first.files[0].read_text().splitlines()[0].split(",")
    assert header == [c["name"] for c in bench.BENCH_CONTRACT["columns"]]
    assert sum(len(p.read_bytes().splitlines()) - 1 for p in first.files) == ROWS

    stamps = [p.stat().st_mtime_ns for p in first.files]
    again = bench.generate(tmp_path / "a", ROWS)
    assert again.reused and [p.stat().st_mtime_ns for p in again.files] == stamps


def test_contenders_alternate_between_early_and_late_runs():
    """With the default two repeats every contender runs once among the first and once among
    the last, so none always pays for running first."""
    first, second = bench.run_order(1), bench.run_order(2)
    assert first[0] == "full job" and sorted(first) == sorted(second) == sorted(bench.CONTENDERS)
    for name in bench.CONTENDERS:
        assert first.index(name) + second.index(name) == len(bench.CONTENDERS) - 1
    assert bench.run_order(3) == first and bench.DEFAULT_REPEAT == 2


@pytest.fixture(scope="module")
def bench_result(spark, tmp_path_factory) -> tuple[bench.Dataset, dict[str, Any]]:
    data = bench.generate(tmp_path_factory.mktemp("bench") / str(ROWS), ROWS)
    return data, bench.bench_size(spark, data, keep=True)


@pytest.mark.slow
def test_three_outputs_hold_the_same_valid_rows(bench_result):
    data, res = bench_result
    out = data.root / "out"
    job, plain, tuned, duck = res["phases"]
    result = res["job_result"]
    curated_dir, quarantine_dir = bench.job_outputs(out / "job")

    assert result["status"] == "SUCCEEDED" and result["rows_read"] == ROWS
    assert [len(p["all_seconds"]) for p in res["phases"]] == [bench.DEFAULT_REPEAT] * 4
    assert plain["rows_out"] == bench.count_parquet_rows(out / "plain_spark") == ROWS
    assert tuned["rows_out"] == bench.count_parquet_rows(out / "plain_spark_tuned") == ROWS
    assert job["rows_out"] == bench.count_parquet_rows(curated_dir) == result["rows_written"]
    assert bench.count_parquet_rows(quarantine_dir) == result["rows_quarantined"] > 0
    assert result["rows_written"] == plain["rows_out"] - result["rows_quarantined"]

    # Every kind of check really ran: types, not-null, each rule, the de-duplication, warnings.
    assert set(result["rule_violations"]) >= {
        "type:amount", "not_null:customer_id", "category_known", "amount_in_range",
        "discount_plausible", "product_code_format", "duplicate"}
    assert result["rows_warned"] == result["rule_violations"]["discount_plausible"] > 0

    # The plain outputs, validated in SQL, hold exactly the rows the job curated.
    assert valid_rows(out / "plain_spark") == result["rows_written"]
    assert valid_rows(out / "duckdb") == result["rows_written"]
    with duckdb.connect() as con:
        row = con.execute(f"SELECT count(*) FROM read_parquet('{out}/plain_spark/**/*.parquet') "
                          "WHERE amount IS NULL").fetchone()
    assert row is not None and duck["rows_out"] == ROWS - row[0]  # DuckDB skips unparsable rows

    # The same partition layout everywhere.
    days = partition_values(out / "plain_spark")
    assert len(days) == bench.DAYS
    assert partition_values(out / "duckdb") == days == partition_values(curated_dir)


def dictionary_columns(root: Path) -> set[str]:
    """Columns written with a dictionary page in the largest Parquet file below ``root``."""
    import pyarrow.parquet as pq

    biggest = max(root.rglob("*.parquet"), key=lambda p: p.stat().st_size)
    group = pq.ParquetFile(biggest).metadata.row_group(0)
    return {group.column(i).path_in_schema for i in range(group.num_columns)
            if group.column(i).dictionary_page_offset is not None}


@pytest.mark.slow
def test_columns_marked_plain_are_written_without_a_dictionary(bench_result):
    data, _ = bench_result
    out = data.root / "out"
    plain_encoded = set(Contract.from_dict(bench.BENCH_CONTRACT).plain_encoded)
    assert {"id", "customer_id", "updated_at"} <= plain_encoded  # the key by default, the rest marked
    assert "category" not in plain_encoded
    curated_dir, _ = bench.job_outputs(out / "job")
    for root in (curated_dir, out / "plain_spark_tuned"):
        written = dictionary_columns(root)
        assert "category" in written and "store_id" in written
        assert not written & plain_encoded
    assert dictionary_columns(out / "plain_spark") >= {"category", "store_id"}


@pytest.mark.slow
def test_report_renders(bench_result):
    _, res = bench_result
    json.dumps(res)
    text = bench.format_size(res)
    assert "full job" in text and "plain Spark" in text and "DuckDB" in text
    assert "job's Parquet settings" in text
    assert "not measured" in bench.target_verdict([res])


@pytest.mark.slow
def test_job_parts_add_up_to_the_job_and_its_ratio(bench_result):
    _, res = bench_result
    job, plain = res["phases"][0], res["phases"][1]
    parts = {p["part"]: p for p in res["job_parts"]}
    # every step of the job ran Spark stages: the data has repeated ids and rejected rows
    assert list(parts) == ["find repeated id", "read, validate, write", "settle rows of repeated keys",
                           "move rejected rows to quarantine", bench.DRIVER_PART]
    assert all(p["seconds"] > 0 for name, p in parts.items() if name != bench.DRIVER_PART)
    for name, part in parts.items():  # each step is the sum of the stages that carry its label
        if name != bench.DRIVER_PART:
            labelled = [st["seconds"] for st in job["stages"] if st["label"] == f"{bench.DATASET_ID}: {name}"]
            assert part["seconds"] == pytest.approx(sum(labelled), abs=1e-3) and labelled, name
    stage_seconds = sum(st["seconds"] for st in job["stages"])
    assert parts[bench.DRIVER_PART]["seconds"] == pytest.approx(job["seconds"] - stage_seconds, abs=1e-3)
    assert parts[bench.DRIVER_PART]["seconds"] > 0  # the steps run one after the other, inside the job's time
    assert sum(p["seconds"] for p in parts.values()) == pytest.approx(job["seconds"], abs=0.01)
    assert sum(p["x_plain_spark"] for p in parts.values()) == pytest.approx(job["seconds"] / plain["seconds"],
                                                                            abs=0.01)
    for p in parts.values():
        assert p["x_plain_spark"] == pytest.approx(p["seconds"] / plain["seconds"], abs=5e-3)  # both rounded


def test_ratios_keep_enough_places_for_the_report():
    """Kept at three places, 33.0529 s against 19.7372 s (1.6746) was stored as 1.675 and printed 1.68."""
    assert f"{bench.ratio(33.0529, 19.7372):.2f}" == "1.67"
    assert bench.ratio(3.0, 2.0) == 1.5


def test_target_verdict_at_the_target_size():
    def at(ratio: float, rows: int = bench.TARGET_ROWS) -> list[dict[str, Any]]:
        return [{"rows": 1_000_000, "ratio_job_plain_spark": 9.9}, {"rows": rows, "ratio_job_plain_spark": ratio}]

    assert bench.target_verdict(at(bench.TARGET_RATIO - 0.01)).endswith(": MET (1.29 x)")
    assert bench.target_verdict(at(bench.TARGET_RATIO)).endswith(": MET (1.30 x)")
    assert bench.target_verdict(at(bench.TARGET_RATIO + 0.01)).endswith(": NOT MET (1.31 x)")
    assert "not measured" in bench.target_verdict(at(1.0, rows=200_000)[:1])


def test_job_parts_group_stages_by_step_in_order():
    stage = {"task_seconds": 0.0, "tasks": 1, "input_mib": 0.0, "shuffle_read_mib": 0.0,
             "shuffle_write_mib": 0.0, "spill_mib": 0.0}
    job = {"seconds": 10.0, "stages": [
        {**stage, "stage_id": 1, "label": f"{bench.DATASET_ID}: find repeated id", "seconds": 1.0},
        {**stage, "stage_id": 2, "label": f"{bench.DATASET_ID}: find repeated id", "seconds": 0.5},
        {**stage, "stage_id": 3, "label": f"{bench.DATASET_ID}: read, validate, write", "seconds": 6.0},
        {**stage, "stage_id": 4, "label": "parquet at NativeMethodAccessorImpl.java:0", "seconds": 0.25},
    ]}
    assert bench.job_parts(job, 5.0) == [
        {"part": "find repeated id", "seconds": 1.5, "x_plain_spark": 0.3},
        {"part": "read, validate, write", "seconds": 6.0, "x_plain_spark": 1.2},
        {"part": "other Spark stages", "seconds": 0.25, "x_plain_spark": 0.05},
        {"part": bench.DRIVER_PART, "seconds": 2.25, "x_plain_spark": 0.45},
    ]


@pytest.mark.slow
def test_read_variants_read_every_row_with_their_extra_columns(spark, bench_result):
    data, _ = bench_result
    names = [c["name"] for c in bench.BENCH_CONTRACT["columns"]]
    expected_extra = {
        "typed read (plain Spark)": [],
        "text read": [],
        "text read + corrupt-record column": ["_corrupt_record"],
        "text read + source-file column": ["source_file"],
        "text read + both (the job's read)": ["_corrupt_record", "source_file"],
    }
    assert set(expected_extra) == set(bench.READ_VARIANTS)
    for name in bench.READ_VARIANTS:
        df = bench.read_variant(spark, data, name)
        assert df.columns == names + expected_extra[name], name
        typed = name == bench.READ_VARIANTS[0]
        types = {f.dataType.simpleString() for f in df.schema.fields}
        assert (types >= {"bigint", "decimal(12,2)", "timestamp"}) if typed else (types == {"string"}), name
        rows = df.collect()
        assert len(rows) == ROWS, name
        if "source_file" in df.columns:
            assert {r["source_file"] for r in rows} == {p.resolve().as_uri() for p in data.files}
        if "_corrupt_record" in df.columns:  # the generator's bad rows are bad values, not bad records
            assert all(r["_corrupt_record"] is None for r in rows)


@pytest.mark.slow
def test_json_lines_profile_curates_the_same_rows_as_the_csv_run(spark, bench_result, tmp_path):
    """The JSON Lines files hold the CSV files' rows: the job curates and quarantines exactly the
    same values from them (lineage aside), and its extra key-listing pass is a part of its own."""
    data, res = bench_result
    jsonl = bench.generate(data.root, ROWS, fmt="jsonl")
    assert jsonl.fmt == "jsonl" and [p.suffix for p in jsonl.files] == [".jsonl"] * bench.DEFAULT_FILES
    assert sum(len(p.read_bytes().splitlines()) for p in jsonl.files) == ROWS  # no header line
    assert bench.generate(data.root, ROWS, fmt="jsonl").reused
    assert bench.generate(data.root, ROWS).reused  # the CSV files are left alone

    timing, result = bench.run_job(spark, jsonl, tmp_path / "job", run_id="jsonl", doc=bench.jsonl_contract())
    csv_result = res["job_result"]
    for count in ("rows_read", "rows_written", "rows_quarantined", "rows_warned", "rule_violations"):
        assert getattr(result, count) == csv_result[count], count
    lineage = ("lake_source_file", "lake_run_id", "lake_ingested_at", "lake_attempt")  # (the last: a directory)
    for (csv_dir, json_dir) in zip(bench.job_outputs(data.root / "out" / "job"), bench.job_outputs(tmp_path / "job"),
                                   strict=True):
        def rows(root: Path) -> str:
            return f"(SELECT * EXCLUDE ({', '.join(lineage)}) FROM read_parquet('{root}/**/*.parquet', " \
                   "hive_partitioning = true, union_by_name = true))"
        with duckdb.connect() as con:
            names = [r[0] for r in con.execute(f"DESCRIBE {rows(csv_dir)}").fetchall()]
            assert "id" in names and not set(lineage) & set(names)
            differ = con.execute(f"SELECT count(*) FROM ({rows(csv_dir)} EXCEPT ALL {rows(json_dir)}) "
                                 f"UNION ALL SELECT count(*) FROM ({rows(json_dir)} EXCEPT ALL {rows(csv_dir)})"
                                 ).fetchall()
        assert differ == [(0,), (0,)], csv_dir
        assert bench.count_parquet_rows(json_dir) == bench.count_parquet_rows(csv_dir) > 0

    plain = bench.plain_read(spark, jsonl)
    assert plain.count() == ROWS and plain.schema == bench.spark_schema()
    parts = [p["part"] for p in bench.job_parts(asdict(timing), timing.seconds)]
    assert parts[0] == f"list the keys of {bench.DEFAULT_FILES} JSON Lines files" and "find repeated id" in parts


@pytest.mark.slow
def test_profile_report_shows_reads_against_the_typed_read(bench_result):
    _, measured = bench_result
    res = copy.deepcopy(measured)
    job_s = res["phases"][0]["seconds"]

    def phase(name: str, seconds: float) -> dict[str, Any]:
        return {**res["phases"][1], "name": name, "seconds": seconds, "all_seconds": [seconds], "stages": []}

    reads = [phase(n + bench.NOOP_SUFFIX, s) for n, s in zip(bench.READ_VARIANTS, (2.0, 2.2, 2.6, 2.8, 3.0),
                                                                 strict=True)]
    res["profile"] = [phase("job, no dedupe", job_s * 0.75), *reads,
                      phase(bench.JSONL_JOB, 9.0), phase(bench.JSONL_PLAIN, 6.0)]
    res["jsonl_parts"] = [{"part": "list the keys of 8 JSON Lines files", "seconds": 1.2, "x_plain_spark": 0.2}]
    text = bench.format_size(res)
    assert "job, no dedupe" in text and "75% of the full job" in text
    assert "full job 9.00 s, plain Spark 6.00 s, job / plain Spark = 1.50 x" in text
    assert "list the keys of 8 JSON Lines files" in text and "% of the full job" not in text.split("JSON Lines")[-1]
    assert "text read + both (the job's read)" in text and "1.50 x the typed read" in text
    assert "noop sink, best of two" in text
    assert "the full job by part, against plain Spark's" in text and "read, validate, write" in text
    res["phases"][0]["stages"] = []  # no stage information: no breakdown that charges it all to the driver
    assert "the full job by part" not in bench.format_size(res)


def test_wide_contract_copies_columns_with_their_types_and_marks():
    doc = bench.wide_contract(25)  # more copies than columns to copy: the names go on with _2
    names = [c["name"] for c in doc["columns"]]
    assert len(names) == len(set(names)) == len(bench.BENCH_CONTRACT["columns"]) + 25
    by_name = {c["name"]: c for c in doc["columns"]}
    assert {k: v for k, v in by_name["amount_1"].items() if k != "name"} == {
        k: v for k, v in by_name["amount"].items() if k != "name"}
    assert "customer_id_2" in by_name and "id_1" not in by_name and f"{bench.PARTITION_COL}_1" not in by_name
    Contract.from_dict(doc)  # a valid contract


@pytest.mark.slow
def test_wide_profile_curates_the_narrow_rows_with_the_copies_alike(spark, bench_result, tmp_path):
    """The wide files hold the benchmark rows with copied columns; every contender of the wide
    profile writes every valid row, and the job's copies hold their columns' values."""
    data, res = bench_result
    wide = bench.generate_wide(data, 20)
    assert not wide.reused and bench.generate_wide(data, 20).reused
    with duckdb.connect() as con:
        header = con.execute(f"SELECT * FROM read_csv('{wide.files[0]}', all_varchar = true) LIMIT 0").description
    assert len(header) == 42
    phases = {p.name: p for p in bench.profile_wide(spark, data, 20, tmp_path / "wide", repeat=1)}
    assert set(phases) == {bench.WIDE_JOB, bench.WIDE_JOB_LIMITED, bench.WIDE_PLAIN}
    written = res["job_result"]["rows_written"]
    assert phases[bench.WIDE_JOB].rows_out == phases[bench.WIDE_JOB_LIMITED].rows_out == written
    assert phases[bench.WIDE_PLAIN].rows_out == ROWS
    _, result = bench.run_job(spark, wide, tmp_path / "job", run_id="wide", doc=bench.wide_contract(20))
    curated, _ = bench.job_outputs(tmp_path / "job")
    with duckdb.connect() as con:
        unequal = con.execute(
            f"SELECT count(*) FROM read_parquet('{curated}/**/*.parquet', hive_partitioning = true) "
            "WHERE amount_1 IS DISTINCT FROM amount OR updated_at_1 IS DISTINCT FROM updated_at "
            "OR category_1 IS DISTINCT FROM category").fetchone()
    assert result.rows_written == written and unequal == (0,)
    report = copy.deepcopy(res)
    report["wide"] = {"columns": 42, "phases": [p.to_dict() for p in phases.values()]}
    assert "--wide: a contract of 42 columns" in bench.format_size(report)
