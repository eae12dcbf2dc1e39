"""The whole job against emulated AWS and a temporary lake: content, bad input, idempotency."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from conftest import metric_sum
from lake_ingest import (
    Contract,
    ContractError,
    ContractNotFound,
    DataQualityError,
    JobSettings,
    SchemaConflict,
    run_ingest,
)
from lake_ingest._contract_store import ContractStore, contract_item
from lake_ingest._reader import JSON_BARE_CR
from lake_ingest._state import StateStore
from lake_ingest.local.athena import LocalAthena
from lake_ingest.local.aws_setup import CONTRACTS_DIR, bootstrap

HEADER = ["ORDER_ID", "CUSTOMER_ID", "ORDER_TS", "ORDER_DATE", "STATUS", "AMOUNT", "CURRENCY", "UPDATED_AT"]


def order(oid, day="2026-11-01", status="NEW", amount="10.00", currency="EUR", updated="10:00:00", cust="7"):
    return [str(oid), cust, f"{day} 09:00:00", day, status, amount, currency, f"{day} {updated}"]


def write_orders(lake: Path, name: str, rows, header=HEADER, sep=",", encoding="utf-8") -> Path:
    path = lake / "raw" / "erp" / "orders" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([sep.join(header)] if header is not None else []) + [sep.join(r) for r in rows]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(encoding), mtime=0))
    return path


def orders_doc() -> dict:
    """The orders contract as its YAML file holds it, to change in a test."""
    return yaml.safe_load((Path(__file__).parents[1] / "glue_jobs/contracts/orders.yaml").read_text())


def query(aws, sql):
    with LocalAthena(aws.glue) as athena:
        return athena.query(sql)


def ledger_states(aws, settings, dataset="orders"):
    entries = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).ledger(dataset)
    return {e.key.rsplit("/", 1)[-1]: (e.state, e.reason) for e in entries.values()}


def test_orders_end_to_end(spark, aws, deployed, lake, settings):
    write_orders(lake, "orders_2026-11-01.csv.gz", [
        order(1, amount="12.50"),
        order(2, status="PAID", updated="10:00:00"),
        order(2, status="SHIPPED", updated="15:00:00"),   # newer copy of order 2 wins
        order(3, status="SHIPPD"),                         # unknown status: quarantined
        order(4, amount="12.5x"),                          # not a number: quarantined
        order(5, currency="XXX"),                          # warn only: kept
    ])
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(6, day="2026-11-02", amount="99.99")])
    result = run_ingest(spark, "orders", "run-1", settings, aws)

    assert result.status == "SUCCEEDED"
    assert (result.files_ingested, result.rows_read, result.rows_written, result.rows_quarantined) == (2, 7, 4, 3)
    assert result.rows_warned == 1 and result.partitions_added == 2
    assert result.rule_violations == {"status_known": 1, "type:amount": 1, "duplicate": 1, "currency_known": 1}

    rows = query(aws, "SELECT order_id, status, amount, currency, order_date, lake_run_id FROM sales.orders ORDER BY 1")
    assert rows == [
        (1, "NEW", Decimal("12.50"), "EUR", dt.date(2026, 11, 1), "run-1"),
        (2, "SHIPPED", Decimal("10.00"), "EUR", dt.date(2026, 11, 1), "run-1"),
        (5, "NEW", Decimal("10.00"), "XXX", dt.date(2026, 11, 1), "run-1"),
        (6, "NEW", Decimal("99.99"), "EUR", dt.date(2026, 11, 2), "run-1"),
    ]
    lineage = query(aws, "SELECT DISTINCT lake_source_file FROM sales.orders WHERE order_id = 6")
    assert lineage[0][0].endswith("erp/orders/orders_2026-11-02.csv.gz")

    bad = query(aws, "SELECT order_id, status, amount, v.rule, v.detail FROM sales.orders_quarantine, "
                     "UNNEST(lake_violations) AS t(v) ORDER BY 1, 4")
    assert bad == [
        ("2", "PAID", "10.00", "duplicate", "another row with the same order_id was kept (the latest by updated_at, then by "
                                           "file name)"),
        ("3", "SHIPPD", "10.00", "status_known", "status='SHIPPD' is not an allowed value"),
        ("4", "NEW", "12.5x", "type:amount", "cannot read AMOUNT='12.5x' as decimal(12,2)"),
    ]

    record = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).get_run("orders", "run-1")
    assert record["status"] == "SUCCEEDED" and record["rows_written"] == 4 and "commit" not in record
    assert ledger_states(aws, settings) == {"orders_2026-11-01.csv.gz": ("INGESTED", ""),
                                            "orders_2026-11-02.csv.gz": ("INGESTED", "")}
    names = {m["MetricName"] for m in aws.cloudwatch.list_metrics(Namespace=settings.metrics_namespace)["Metrics"]}
    assert {"RowsRead", "RowsWritten", "RowsQuarantined", "FilesIngested", "RunSucceeded"} <= names
    assert metric_sum(aws, settings, "RowsQuarantined") == 3


def test_rerun_and_redelivery_add_nothing(spark, aws, deployed, lake, settings):
    path = write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2)])
    assert run_ingest(spark, "orders", "run-1", settings, aws).rows_written == 2
    again = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (again.status, again.files_skipped, again.rows_read, again.message) == (
        "SUCCEEDED", 1, 0, "nothing new to ingest")
    # The same file delivered again (same key, same bytes) is recognised by its ETag.
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)
    third = run_ingest(spark, "orders", "run-3", settings, aws)
    assert third.rows_read == 0
    assert query(aws, "SELECT count(*), count(DISTINCT order_id) FROM sales.orders") == [(2, 2)]
    # A corrected file under the same name is a new delivery.
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2), order(3)])
    fourth = run_ingest(spark, "orders", "run-4", settings, aws)
    assert fourth.files_ingested == 1 and fourth.rows_written == 3


def test_unreadable_files_fail_alone_and_stay_untouched(spark, aws, deployed, lake, settings):
    good = write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    raw = lake / "raw" / "erp" / "orders"
    (raw / "orders_2026-11-02.csv.gz").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage")
    write_orders(lake, "orders_2026-11-03.csv.gz", [order(3)], sep=";")
    write_orders(lake, "orders_2026-11-04.csv.gz", [order(4)], header=None)
    write_orders(lake, "orders_2026-11-05.csv.gz", [order(5, cust="Müller")], encoding="utf-16")
    (raw / "orders_2026-11-06.csv.gz").write_bytes(b"")
    write_orders(lake, "orders_2026-11-07.csv.gz", [])
    before = {p.name: p.read_bytes() for p in raw.iterdir()}

    result = run_ingest(spark, "orders", "run-1", settings, aws)

    assert result.status == "SUCCEEDED"
    assert (result.files_ingested, result.files_failed, result.files_empty, result.rows_written) == (1, 4, 2, 1)
    states = ledger_states(aws, settings)
    assert states[good.name] == ("INGESTED", "")
    assert states["orders_2026-11-02.csv.gz"] == ("FAILED", "the contract says gzip but the file is not gzip-compressed")
    not_found = ("none of the contract's columns found (the file starts with: {}); missing header, wrong "
                 "delimiter or wrong format?")
    assert states["orders_2026-11-03.csv.gz"] == ("FAILED", not_found.format(repr(";".join(HEADER))))
    assert states["orders_2026-11-04.csv.gz"] == ("FAILED", not_found.format(", ".join(map(repr, order(4)[:5]))))
    assert states["orders_2026-11-05.csv.gz"][0] == "FAILED" and "not valid UTF-8" in states["orders_2026-11-05.csv.gz"][1]
    assert states["orders_2026-11-06.csv.gz"] == ("EMPTY", "file has 0 bytes")
    assert states["orders_2026-11-07.csv.gz"] == ("EMPTY", "file holds a header and no data rows")
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before
    assert query(aws, "SELECT order_id FROM sales.orders") == [(1,)]
    # Failed files are not retried until they change.
    assert run_ingest(spark, "orders", "run-2", settings, aws).files_failed == 0


def test_a_check_that_raises_fails_its_file_only(spark, aws, deployed, lake, settings, monkeypatch):
    """An error the checks of a file's first bytes did not foresee (a UTF-16 file without a byte
    order mark once raised one) ended every run of the dataset, so its good files never went
    through. It now fails that file with the error."""
    import lake_ingest._job as job_module

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(2, day="2026-11-02")])
    real = job_module.sniff

    def sniff(head: bytes, size: int, contract):
        if b"2026-11-02" in gzip.decompress(head):
            raise LookupError("an error nobody foresaw")
        return real(head, size, contract)

    monkeypatch.setattr(job_module, "sniff", sniff)
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.files_failed) == ("SUCCEEDED", 1, 1)
    assert ledger_states(aws, settings)["orders_2026-11-02.csv.gz"] == (
        "FAILED", "its first bytes could not be checked: LookupError: an error nobody foresaw")
    assert query(aws, "SELECT order_id FROM sales.orders") == [(1,)]


def test_a_file_cut_short_fails_alone(spark, aws, deployed, lake, settings, monkeypatch):
    """A gzip file whose upload was cut short passes the checks on its first bytes, then fails
    Spark's read midway. It is found by reading the files again in halves, marked failed with
    the cause, and the run goes on with the other files; none of its rows is kept. Only this
    attempt's output is removed before the pass runs again."""
    from pyspark.sql import functions as F

    import lake_ingest._job as job_module
    from lake_ingest._sniff import HEAD_BYTES

    rng = random.Random(7)
    raw = lake / "raw" / "erp" / "orders"
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2)])
    big = [order(1000 + i, cust=str(rng.randrange(10**9)), amount=f"{rng.randrange(10**6) / 100:.2f}")
           for i in range(40_000)]
    whole = write_orders(lake, "orders_2026-11-02.csv.gz", big).read_bytes()
    assert len(whole) > 2 * HEAD_BYTES  # the sniffed head decompresses fine
    cut = raw / "orders_2026-11-02.csv.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    write_orders(lake, "orders_2026-11-03.csv.gz", [order(3, day="2026-11-03")])
    before = cut.read_bytes()
    progress: list[str] = []
    # Another attempt of run-1, alive meanwhile: the pass's retry removes this attempt's files only.
    other = lake / "curated" / "sales" / "orders" / "lake_run_id=run-1" / "lake_attempt=other" / "part-0.parquet"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another attempt's")
    seen_at_retry: list[bool] = []
    real_unchanged = job_module._IngestRun._unchanged

    def unchanged(self, sizes):
        seen_at_retry.append(other.exists())
        return real_unchanged(self, sizes)

    monkeypatch.setattr(job_module._IngestRun, "_unchanged", unchanged)
    # A good file's read alone fails once (a lost executor, say): it is read again, not failed.
    real_read, flaky = job_module.read_files, ["orders_2026-11-03.csv.gz"]

    def read_files(spark_, groups, contract):
        paths = [path for g in groups for path in g.paths]
        if len(paths) == 1 and paths[0].endswith(tuple(flaky)):
            flaky.clear()
            return spark_.range(1).select(F.raise_error(F.lit("the executor was lost")))
        return real_read(spark_, groups, contract)

    monkeypatch.setattr(job_module, "read_files", read_files)
    spark.catalog.clearCache()

    result = run_ingest(spark, "orders", "run-1", settings, aws, on_progress=progress.append)
    # the key pass met the file first: what it had cached is released, as after a run that succeeds
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()

    assert result.status == "SUCCEEDED"
    assert (result.files_ingested, result.files_failed, result.rows_read, result.rows_written) == (2, 1, 3, 3)
    state, reason = ledger_states(aws, settings)[cut.name]
    assert state == "FAILED"
    assert "cannot be read to the end" in reason and "Unexpected end of input stream" in reason
    assert result.failed_files == {f"erp/orders/{cut.name}": reason}
    assert "the pass failed (java.io.EOFException: Unexpected end of input stream); reading its 3 files again, in halves, to find the cause" in progress
    # all three, 11-01 alone, 11-02 and 11-03, then each of those alone twice (11-03 failed once)
    assert "7 reads of 3 files: 1 cannot be read to the end" in progress
    [second_try] = [m for m in progress if "second try" in m]
    assert second_try.startswith("erp/orders/orders_2026-11-03.csv.gz: read to the end on a second try (the first: "
                                 "cannot be read to the end: ") and "the executor was lost" in second_try
    assert second_try.endswith("); not failed") and not flaky
    assert cut.read_bytes() == before
    assert seen_at_retry == [True]  # kept by the retry; removed by the commit (the other attempt was refused)
    assert not other.exists()
    assert query(aws, "SELECT order_id FROM sales.orders ORDER BY 1") == [(1,), (2,), (3,)]
    again = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (again.files_skipped, again.files_failed, again.rows_read) == (3, 0, 0)


@pytest.mark.parametrize("n", [1, 2, 3, 6, 9])
def test_find_failing_names_every_failing_item_in_few_tries(n):
    """Every subset of n items as the failing ones: all are found, in order, each with its own
    reason, within the bound of the docstring; the whole set is tried first."""
    from itertools import combinations
    from math import ceil, log2

    from lake_ingest._job import find_failing

    items = [f"f{i}" for i in range(n)]
    for k in range(n + 1):
        for bad in combinations(items, k):
            tried: list[list[str]] = []

            def fails(group, bad=frozenset(bad), tried=tried):
                tried.append(list(group))
                hit = [x for x in group if x in bad]
                return f"{hit[0]} is cut short" if hit else None

            found = find_failing(items, fails)
            assert found == [(x, f"{x} is cut short") for x in bad]
            assert tried[0] == items
            assert len(tried) <= (1 + 2 * k * ceil(log2(n)) if n > 1 else 1)
    assert find_failing([], lambda group: "never tried") == []


def test_find_failing_blames_no_item_for_a_failure_none_causes():
    from lake_ingest._job import find_failing

    tried: list[list[int]] = []

    def fails(group):  # only the two first items together fail (say, too much memory)
        tried.append(list(group))
        return "out of memory" if {0, 1} <= set(group) else None

    assert find_failing(list(range(8)), fails) == []
    assert tried == [list(range(8)), [0, 1, 2, 3], [0, 1], [0], [1], [2, 3], [4, 5, 6, 7]]


def test_a_file_removed_during_the_run_is_left_for_later(spark, aws, deployed, lake, settings, monkeypatch):
    """A file that disappears between the listing and the read is not recorded as failed, so the
    same file delivered again (same ETag) is ingested by a later run."""
    from lake_ingest import _job

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    doomed = write_orders(lake, "orders_2026-11-02.csv.gz", [order(2, day="2026-11-02")])
    data = doomed.read_bytes()
    original = _job._IngestRun._transform_and_write

    def remove_then_write(self, files, ingested_at):
        doomed.unlink(missing_ok=True)
        return original(self, files, ingested_at)

    monkeypatch.setattr(_job._IngestRun, "_transform_and_write", remove_then_write)
    progress: list[str] = []
    first = run_ingest(spark, "orders", "run-1", settings, aws, on_progress=progress.append)
    assert (first.status, first.files_ingested, first.files_failed, first.files_pending) == ("SUCCEEDED", 1, 0, 1)
    assert "erp/orders/orders_2026-11-02.csv.gz: removed or replaced since it was listed; left for a later run" in progress
    assert list(ledger_states(aws, settings)) == ["orders_2026-11-01.csv.gz"]
    assert metric_sum(aws, settings, "FilesPending") == 1

    monkeypatch.setattr(_job._IngestRun, "_transform_and_write", original)
    doomed.write_bytes(data)
    second = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (second.files_skipped, second.files_ingested) == (1, 1)
    assert query(aws, "SELECT order_id FROM sales.orders ORDER BY 1") == [(1,), (2,)]


def test_raw_file_names_with_glob_characters_colons_and_spaces(spark, aws, deployed, lake, settings):
    """Object keys may hold characters that Hadoop paths treat specially: glob characters, a
    timestamp's colons, spaces, '#' and '%'. Each such file is read as itself, exactly once."""
    names = ["orders_2026-11-01 [final].csv.gz", "orders_2026-11-02T10:30:00.csv.gz",
             "orders_{a,b}*?#%41.csv.gz", "orders_[0-9].csv.gz"]
    for i, name in enumerate(names, 1):
        write_orders(lake, name, [order(i), order(10 + i)])
    write_orders(lake, "orders_1.csv.gz", [order(99)])  # what the pattern "orders_[0-9]" would match

    result = run_ingest(spark, "orders", "run-1", settings, aws)

    assert (result.status, result.files_ingested, result.files_failed, result.rows_written) == ("SUCCEEDED", 5, 0, 9)
    assert {k: v[0] for k, v in ledger_states(aws, settings).items()} == {n: "INGESTED" for n in [*names, "orders_1.csv.gz"]}
    rows = query(aws, "SELECT order_id, lake_source_file FROM sales.orders ORDER BY 1")
    assert [r[0] for r in rows] == [1, 2, 3, 4, 11, 12, 13, 14, 99]
    sources = {oid: unquote(src.rsplit("/", 1)[-1]) for oid, src in rows}
    assert [sources[i] for i in (1, 2, 3, 4, 99)] == [*names, "orders_1.csv.gz"]


def test_a_lake_whose_path_holds_glob_characters(spark, aws, tmp_path):
    """The zones' own paths may hold '[x]': the staged rejected and pending rows are read back
    as the directories they are, not as patterns."""
    lake = tmp_path / "lake [x]"
    settings = JobSettings(raw_uri=str(lake / "raw"), curated_uri=str(lake / "curated"),
                           quarantine_uri=str(lake / "quarantine"), lock_lease_seconds=600)
    bootstrap(aws, settings)
    write_orders(lake, "orders_2026-11-01.csv.gz",
                 [order(1), order(2, status="LOST"), order(3), order(3, updated="11:00:00", amount="12.00")])
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    # quarantined: the unknown status and the superseded version of order 3
    assert (result.status, result.rows_written, result.rows_quarantined) == ("SUCCEEDED", 2, 2)
    assert query(aws, "SELECT order_id, amount FROM sales.orders ORDER BY 1") == [(1, Decimal("10.00")),
                                                                                 (3, Decimal("12.00"))]


@pytest.mark.parametrize("multiline", [True, False])
def test_quoted_line_breaks(spark, aws, deployed, lake, settings, multiline):
    """With ``multiline: true`` a quoted field may hold a line break, and the record, its key
    and its raw text stay whole. Without it, the file fails with the way out: read line by line,
    such a record is cut into pieces, which may pass for rows nobody wrote."""
    doc = orders_doc()
    doc["format"]["options"]["multiline"] = multiline
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz", [
        order(1),
        order(2, currency='"EU\nR"', updated="09:00:00"),   # older copy, spread over two lines
        order(2, currency="GBP", updated="11:00:00"),
        order(3),
    ])

    result = run_ingest(spark, "orders", "run-1", settings, aws)

    if not multiline:
        assert (result.files_failed, result.rows_read) == (1, 0)
        reason = result.failed_files["erp/orders/orders_2026-11-01.csv.gz"]
        assert reason.startswith("the record on line 3 has a quoted field") and "multiline: true" in reason
        assert ledger_states(aws, settings)["orders_2026-11-01.csv.gz"][0] == "FAILED"
        return
    kept = query(aws, "SELECT order_id, currency FROM sales.orders ORDER BY 1")
    assert kept == [(1, "EUR"), (2, "GBP"), (3, "EUR")]
    bad = query(aws, "SELECT order_id, currency, lake_raw_record, v.rule FROM sales.orders_quarantine, "
                     "UNNEST(lake_violations) AS t(v) ORDER BY 3, 4")
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (4, 3, 1)
    assert bad == [("2", "EU\nR", None, "currency_known"), ("2", "EU\nR", None, "duplicate")]


def test_invalid_bytes_past_the_checked_head_reject_their_row(spark, aws, deployed, lake, settings, monkeypatch):
    """A Latin-1 byte deep inside a UTF-8 file: the check of the file's first bytes cannot see
    it, and Spark's CSV reader would silently turn it into U+FFFD. The row is quarantined with the
    reason; the file's other rows are kept."""
    from lake_ingest import _job

    monkeypatch.setattr(_job, "HEAD_BYTES", 120)  # the check sees the header and little more
    path = lake / "raw" / "erp" / "orders" / "orders_2026-11-01.csv.gz"
    path.parent.mkdir(parents=True)
    lines = [",".join(HEADER)] + [",".join(order(i)) for i in range(1, 40)]
    body = ("\n".join(lines) + "\n").encode() + ",".join(order(40, currency="EUR")).replace(
        "EUR", "E\xdcR").encode("latin-1") + b"\n"
    path.write_bytes(gzip.compress(body, mtime=0))

    result = run_ingest(spark, "orders", "run-1", settings, aws)

    assert (result.files_ingested, result.rows_read, result.rows_written, result.rows_quarantined) == (1, 40, 39, 1)
    assert result.rule_violations == {"type:currency": 1}
    bad = query(aws, "SELECT order_id, v.detail FROM sales.orders_quarantine, UNNEST(lake_violations) AS t(v)")
    assert bad == [("40", "cannot read CURRENCY='E\ufffdR' as string: bytes that are not valid UTF-8")]


def test_a_type_change_against_the_catalog_fails_before_writing(spark, aws, deployed, lake, settings):
    """A contract whose column type no longer matches the table fails the run before anything is
    written, with the conflict named; it does not leave a commit that every later run would retry."""

    orders = orders_doc()
    store = ContractStore(aws.dynamodb, settings.contracts_table)
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    assert run_ingest(spark, "orders", "run-1", settings, aws).rows_written == 1

    changed = {**orders, "version": 2, "columns": [
        {**c, "type": "decimal(14,2)"} if c["name"] == "amount" else c for c in orders["columns"]]}
    store.put([changed])
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(2, day="2026-11-02")])
    with pytest.raises(SchemaConflict, match=r"sales.orders.amount is decimal\(12,2\) in the catalog, "
                                             r"the job would write decimal\(14,2\)"):
        run_ingest(spark, "orders", "run-2", settings, aws)
    runs = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    assert runs.get_run("orders", "run-2")["status"] == "FAILED"
    assert not list((lake / "curated").rglob("lake_run_id=run-2"))
    assert "orders_2026-11-02.csv.gz" not in ledger_states(aws, settings)

    store.put([{**orders, "version": 3}])
    third = run_ingest(spark, "orders", "run-3", settings, aws)
    assert (third.status, third.files_ingested) == ("SUCCEEDED", 1)
    assert query(aws, "SELECT order_id FROM sales.orders ORDER BY 1") == [(1,), (2,)]


def test_an_encoding_java_does_not_know_stops_the_run_before_any_file_is_recorded(spark, aws, deployed, lake,
                                                                                 settings):
    """Python takes 'hp_roman8', Java (which Spark reads with) does not: without this check every
    file would be recorded failed, and stay so after the contract is corrected."""
    doc = orders_doc()
    doc["format"]["options"]["encoding"] = "hp_roman8"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    with pytest.raises(ContractError, match=r"(?s)dataset 'orders'.*format.options.encoding: 'hp_roman8' is not an "
                                            r"encoding Java knows"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert ledger_states(aws, settings) == {}
    doc["format"]["options"]["encoding"] = "ISO-8859-1"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    assert run_ingest(spark, "orders", "run-2", settings, aws).rows_written == 1


def test_regex_rules_are_compiled_by_java(spark, aws, deployed, lake, settings):
    """Patterns use Java's syntax, which Spark runs: a Unicode class works; Python's named-group
    syntax, which Java does not know, stops the run before it starts, naming the rule."""
    doc = orders_doc()
    store = ContractStore(aws.dynamodb, settings.contracts_table)
    rule = {"name": "currency_code", "type": "regex", "column": "currency", "action": "reject"}
    store.put([{**doc, "quality": [*doc["quality"], {**rule, "pattern": "^(?P<code>[A-Z]{3})$"}]}])
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2, currency="eur")])
    with pytest.raises(ContractError, match=r"(?s)dataset 'orders'.*quality\[3\] \(currency_code\)\.pattern: "
                                            r"Java's regex engine, which Spark uses, cannot compile it: "
                                            r"java.util.regex.PatternSyntaxException"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).get_run("orders", "run-1") is None

    store.put([{**doc, "quality": [*doc["quality"], {**rule, "pattern": r"^\p{Lu}{3}$"}]}])
    result = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (result.rows_written, result.rule_violations.get("currency_code")) == (1, 1)


def test_a_failure_no_file_causes_fails_the_run(spark, aws, deployed, lake, settings, monkeypatch):
    """When every file reads fine on its own, the pass's error stands: the run fails and no file
    is blamed in the ledger."""
    from pyspark.errors.exceptions.captured import CapturedException

    from lake_ingest import _job

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])

    def broken(self, files, ingested_at):
        raise CapturedException(desc="executor lost", stackTrace="")

    monkeypatch.setattr(_job._IngestRun, "_transform_and_write", broken)
    progress: list[str] = []
    with pytest.raises(CapturedException, match="executor lost"):
        run_ingest(spark, "orders", "run-1", settings, aws, on_progress=progress.append)
    assert "the pass failed (executor lost); reading its 1 file again, in halves, to find the cause" in progress
    assert "1 read of 1 file: 0 cannot be read to the end" in progress
    record = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).get_run("orders", "run-1")
    assert record["status"] == "FAILED" and "executor lost" in record["error"]
    assert ledger_states(aws, settings) == {}


def test_datetime_patterns_spark_refuses_stop_the_run_before_it_starts(spark, aws, deployed, lake, settings):
    """A pattern Spark cannot parse with would fail the run after the lock and a whole read, with
    a message that names no column; it is refused up front, naming the column."""
    doc = orders_doc()
    doc["columns"][2]["format"] = "YYYY-MM-dd HH:mm:ss"  # week-based year: not for parsing in Spark 3
    doc["columns"][3]["format"] = "yyyy-MM-dd b"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    with pytest.raises(ContractError) as info:
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert [p.split(": Spark cannot use ")[0] for p in info.value.problems] == [
        "columns[2] (order_ts).format", "columns[3] (order_date).format"]
    assert "Unknown pattern letter: b" in info.value.problems[1]
    assert StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).get_run("orders", "run-1") is None


def test_a_reader_spark_refuses_before_reading_fails_the_run_not_the_files(spark, aws, deployed, lake, settings,
                                                                          monkeypatch):
    """An error Spark raises while setting up the read of text files is the contract's, not the
    files': the run fails and no file is recorded, so the files are read once the contract is
    right (before, every file was recorded failed, for good)."""
    from pyspark.sql import types as T

    from lake_ingest import _job

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(2, day="2026-11-02")])

    def refused(spark_, groups, contract):  # what Spark says of two columns that differ in case only
        schema = T.StructType([T.StructField(n, T.StringType()) for n in ("v", "V")])
        return spark_.read.schema(schema).csv([g.paths[0] for g in groups])

    def unreachable(spark_, groups, contract):  # a store that fails (or refuses) the listing: an I/O error
        return spark_.read.schema("v string").csv(["nowhere://bucket/" + g.paths[0].rsplit("/", 1)[-1]
                                                   for g in groups])

    real = _job.read_files
    monkeypatch.setattr(_job, "read_files", refused)
    with pytest.raises(ContractError, match=r"(?s)dataset 'orders'.*format: Spark refuses the contract's reader "
                                            r"settings before reading any file: .*COLUMN_ALREADY_EXISTS"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert ledger_states(aws, settings) == {}
    record = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).get_run("orders", "run-1")
    assert record["status"] == "FAILED"
    monkeypatch.setattr(_job, "read_files", unreachable)
    with pytest.raises(Exception, match='No FileSystem for scheme "nowhere"') as info:  # as it is: not the contract's
        run_ingest(spark, "orders", "run-io", settings, aws)
    assert not isinstance(info.value, ContractError)
    assert ledger_states(aws, settings) == {}
    monkeypatch.setattr(_job, "read_files", real)
    result = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (result.files_ingested, result.rows_written) == (2, 2)


def test_missing_and_invalid_contracts(spark, aws, deployed, settings):
    with pytest.raises(ContractNotFound, match="no contract for dataset 'invoices'"):
        run_ingest(spark, "invoices", "run-1", settings, aws)
    doc = orders_doc()
    doc["columns"][5]["type"] = "money"
    with pytest.raises(ContractError, match="unknown type 'money'"):
        contract_item(doc)  # the loader refuses it...
    aws.dynamodb.put_item(TableName=settings.contracts_table,  # ...and so does the job if it got in anyway
                          Item={"dataset_id": {"S": "orders"}, "document": {"S": json.dumps(doc)}})
    with pytest.raises(ContractError) as info:
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert "dataset 'orders'" in str(info.value) and "(amount).type: unknown type 'money'" in str(info.value)
    aws.dynamodb.put_item(TableName=settings.contracts_table,
                          Item={"dataset_id": {"S": "orders"}, "document": {"S": "{not json"}})
    with pytest.raises(ContractError, match="document: not valid JSON"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    doc = {k: v for k, v in orders_doc().items() if k != "dataset_id"}
    aws.dynamodb.put_item(TableName=settings.contracts_table,
                          Item={"dataset_id": {"S": "orders"}, "document": {"S": json.dumps(doc)}})
    with pytest.raises(ContractError) as info:  # named after the item, not after the document's missing id
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert str(info.value).startswith("invalid contract for dataset 'orders':") and "dataset_id: is required" in str(info.value)


def test_disabled_contract_does_nothing(spark, aws, deployed, lake, settings):
    doc = orders_doc()
    ContractStore(aws.dynamodb, settings.contracts_table).put([{**doc, "enabled": False}])
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    assert run_ingest(spark, "orders", "run-1", settings, aws).status == "DISABLED"
    assert ledger_states(aws, settings) == {}


def test_strict_schema_rejects_a_new_column(spark, aws, deployed, lake, settings):
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1) + ["x"]], header=HEADER + ["CHANNEL"])
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert result.files_failed == 1
    assert "unexpected columns CHANNEL (schema_evolution: strict)" in result.failed_files["erp/orders/orders_2026-11-01.csv.gz"]


def customer(cid, day="2026-11-01", **extra):
    return {"customer_id": cid, "name": f"C{cid}", "email": f"c{cid}@example.com", "country": "DE",
            "signupDate": "01/02/2025", "loyaltyPoints": 5, "active": True, "updatedAt": f"{day}T08:00:00", **extra}


def write_customers(lake: Path, name: str, records) -> None:
    path = lake / "raw" / "crm" / "customers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))


def test_additive_schema_evolution_adds_nullable_columns(spark, aws, deployed, lake, settings):
    write_customers(lake, "customers_2026-11-01.jsonl.gz", [customer(1), customer(2, email="broken"),
                                                            '{"customer_id": 3, "na'])
    first = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (first.rows_written, first.rows_quarantined) == (1, 2)
    assert first.rule_violations == {"email_format": 1, "malformed": 1}
    write_customers(lake, "customers_2026-11-02.jsonl.gz", [customer(4, "2026-11-02", segment="gold")])
    second = run_ingest(spark, "customers", "run-2", settings, aws)
    assert second.added_columns == ["segment"]
    rows = query(aws, "SELECT customer_id, full_name, signup_date, is_active, segment FROM sales.customers ORDER BY 1")
    assert rows == [(1, "C1", dt.date(2025, 2, 1), True, None), (4, "C4", dt.date(2025, 2, 1), True, "gold")]
    columns = [c["Name"] for c in aws.glue.get_table(DatabaseName="sales", Name="customers")["Table"]
               ["StorageDescriptor"]["Columns"]]
    assert columns[-3:] == ["lake_source_file", "lake_ingested_at", "segment"]


def test_json_keys_that_first_appear_late_in_a_file_are_read(spark, aws, deployed, lake, settings):
    """The sniffer looks at the first 50 records; a key that appears only later is still read."""
    early = [{k: v for k, v in customer(i).items() if k not in ("email", "loyaltyPoints")} for i in range(1, 56)]
    write_customers(lake, "customers_2026-11-01.jsonl.gz", early + [customer(i) for i in range(56, 61)])
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.rows_written) == ("SUCCEEDED", 60)
    rows = query(aws, "SELECT customer_id, email, loyalty_points FROM sales.customers WHERE customer_id IN (1, 56, 60) "
                      "ORDER BY 1")
    assert rows == [(1, None, None), (56, "c56@example.com", 5), (60, "c60@example.com", 5)]


@pytest.mark.parametrize("policy", ["additive", "strict"])
def test_a_new_json_key_that_first_appears_late_follows_the_policy(spark, aws, deployed, lake, settings, policy):
    """A key that no contract column reads, first seen after the records the sniffer looks at:
    added under the additive policy (its values were dropped without a word), and its file
    refused under strict (it was ingested without the key)."""
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    doc["schema_evolution"] = policy
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    records = [customer(i) for i in range(1, 60)] + [customer(60, segment="gold")]
    late = "customers_2026-11-01 [v2] #%41 é.jsonl.gz"  # the keys are matched to the file by its path
    write_customers(lake, late, records)
    write_customers(lake, "customers_2026-11-02.jsonl.gz", [customer(61, "2026-11-02")])
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    if policy == "additive":
        assert (result.status, result.files_ingested, result.rows_written) == ("SUCCEEDED", 2, 61)
        assert query(aws, "SELECT customer_id, segment FROM sales.customers WHERE customer_id IN (1, 60, 61) "
                          "ORDER BY 1") == [(1, None), (60, "gold"), (61, None)]
    else:
        assert (result.status, result.files_ingested, result.files_failed, result.rows_written) == (
            "SUCCEEDED", 1, 1, 1)
        assert ledger_states(aws, settings, "customers")[late] == (
            "FAILED", "unexpected columns segment (schema_evolution: strict)")


def test_a_json_lines_file_cut_short_fails_alone_in_the_key_listing(spark, aws, deployed, lake, settings):
    """The key listing reads every new file to the end: a file cut short fails there, alone,
    with the cause, and the others go through."""
    from lake_ingest._sniff import HEAD_BYTES

    rng = random.Random(3)
    write_customers(lake, "customers_2026-11-01.jsonl.gz", [customer(1)])
    big = [customer(100 + i, note=f"{rng.getrandbits(256):x}") for i in range(12_000)]
    write_customers(lake, "customers_2026-11-02.jsonl.gz", big)
    cut = lake / "raw" / "crm" / "customers" / "customers_2026-11-02.jsonl.gz"
    whole = cut.read_bytes()
    assert len(whole) > 2 * HEAD_BYTES
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    progress: list[str] = []
    result = run_ingest(spark, "customers", "run-1", settings, aws, on_progress=progress.append)
    assert (result.status, result.files_ingested, result.files_failed, result.rows_written) == ("SUCCEEDED", 1, 1, 1)
    state, reason = ledger_states(aws, settings, "customers")[cut.name]
    assert state == "FAILED" and reason.startswith("cannot be read to the end") and "Unexpected end of input" in reason
    assert any(m.startswith("listing the keys failed (java.io.EOFException") for m in progress)


def test_late_json_keys_are_found_with_a_relative_raw_zone(spark, aws, lake, monkeypatch):
    """A local raw zone given as a relative path (as in the README's command line) is listed as
    such, while Spark names files by absolute path: they are matched all the same."""
    monkeypatch.chdir(lake.parent)
    settings = JobSettings(raw_uri="lake/raw", curated_uri="lake/curated", quarantine_uri="lake/quarantine",
                           lock_lease_seconds=600)
    bootstrap(aws, settings)
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    ContractStore(aws.dynamodb, settings.contracts_table).put([{**doc, "schema_evolution": "strict"}])
    write_customers(lake, "customers_2026-11-01.jsonl.gz", [customer(i) for i in range(1, 60)] + [customer(60, x=1)])
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.files_failed, result.rows_written) == ("SUCCEEDED", 1, 0)


def test_json_lines_with_nan_do_not_block_the_dataset(spark, aws, deployed, lake, settings):
    """Python's json writes NaN and Infinity, which Spark's reader takes but json_object_keys
    does not: a file of such records stopped every run of the dataset. Their keys are read, and
    a new key on such a line follows the policy like any other."""
    write_customers(lake, "customers_2026-11-01.jsonl.gz",
                    ['{"customer_id": 1, "name": "C1", "country": "DE", "loyaltyPoints": NaN, '
                     '"updatedAt": "2026-11-01T08:00:00"}'])
    write_customers(lake, "customers_2026-11-02.jsonl.gz", [customer(2, "2026-11-02")])
    late = [customer(i, "2026-11-03") for i in range(3, 63)] + [
        '{"customer_id": 63, "name": "C63", "country": "DE", "loyaltyPoints": Infinity, '
        '"updatedAt": "2026-11-03T08:00:00", "segment": "gold"}']
    write_customers(lake, "customers_2026-11-03.jsonl.gz", late)
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    ContractStore(aws.dynamodb, settings.contracts_table).put([{**doc, "schema_evolution": "strict"}])
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.files_failed) == ("SUCCEEDED", 2, 1)
    assert result.failed_files == {"crm/customers/customers_2026-11-03.jsonl.gz":
                                   "unexpected columns segment (schema_evolution: strict)"}
    assert result.rule_violations == {"type:loyalty_points": 1}  # NaN is not an int: quarantined, not lost
    assert query(aws, "SELECT customer_id FROM sales.customers") == [(2,)]


@pytest.mark.parametrize(("line", "reason"), [
    ('[{"customer_id": 2}, {"customer_id": 3, "iban": "x"}]', "a line holds a JSON array"),
    ('\t[{"customer_id": 2}]', "a line holds a JSON array"),
])
def test_json_lines_that_are_not_one_record_fail_their_file(spark, aws, deployed, lake, settings, line, reason):
    """Spark's reader splits an array into rows: the file would be ingested with rows nobody
    wrote, and keys nobody checked. It fails with the reason instead, wherever the line is, and
    the other files go through."""
    write_customers(lake, "customers_2026-11-01.jsonl.gz", [customer(i) for i in range(1, 70)] + [line])
    write_customers(lake, "customers_2026-11-02.jsonl.gz", [customer(70, "2026-11-02")])
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.files_failed, result.rows_written) == ("SUCCEEDED", 1, 1, 1)
    assert result.failed_files["crm/customers/customers_2026-11-01.jsonl.gz"].startswith(reason)


def test_a_late_new_json_key_in_latin_1_follows_the_policy(spark, aws, deployed, lake, settings):
    """The key listing decodes a single-byte encoding before reading the keys, so a key first
    seen after the sniffed records is judged in ISO-8859-1 files as in UTF-8 ones."""
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    doc["format"]["options"] = {"encoding": "ISO-8859-1"}
    ContractStore(aws.dynamodb, settings.contracts_table).put([{**doc, "schema_evolution": "strict"}])
    records = [customer(i, name="Müller") for i in range(1, 60)] + [customer(60, name="Jürgen", segment="gold")]
    path = lake / "raw" / "crm" / "customers" / "customers_2026-11-01.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_bytes(gzip.compress(text.encode("iso-8859-1"), mtime=0))
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert result.failed_files == {"crm/customers/customers_2026-11-01.jsonl.gz":
                                   "unexpected columns segment (schema_evolution: strict)"}


def test_a_json_record_with_bytes_that_are_not_utf8_is_quarantined_readably(spark, aws, deployed, lake, settings):
    """The JSON reader makes such a record malformed and keeps its bytes as they are: stored so,
    they made Parquet readers (DuckDB, pyarrow) refuse the whole quarantine table."""
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    doc["format"]["compression"], doc["source"]["pattern"] = "none", "customers_*.jsonl"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    good = [json.dumps(customer(i)).encode() for i in range(1, 2001)]  # ~360 KB: past the sniffed head
    bad = json.dumps(customer(2001, name="M?ller")).encode().replace(b"M?ller", b"M\xfcller")  # Latin-1 u-umlaut
    path = lake / "raw" / "crm" / "customers" / "customers_2026-11-01.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join([*good, bad]) + b"\n")
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.failed_files, result.rows_written, result.rule_violations) == ({}, 2000, {"malformed": 1})
    [(record,)] = query(aws, "SELECT lake_raw_record FROM sales.customers_quarantine")
    assert record == bad.decode("utf-8", errors="replace") and "M\ufffdller" in record


def test_a_line_of_too_many_fields_fails_its_file_with_the_line(spark, aws, deployed, lake, settings):
    """The CSV parser stops at a line of more fields than its limit; the reason said only
    'ArrayIndexOutOfBoundsException'. It now names the line and the limit."""
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2), ["9"] * 25000, order(3)])
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(4, day="2026-11-02")])
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (result.files_ingested, result.files_failed, result.rows_written) == (1, 1, 1)
    assert result.failed_files == {"erp/orders/orders_2026-11-01.csv.gz": "cannot be read to the end: line 4: a line "
                                   "holds more than 20,480 fields, the CSV parser's limit"}


def test_a_malformed_json_record_in_latin_1_is_quarantined_as_written(spark, aws, deployed, lake, settings):
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    doc["format"]["options"] = {"encoding": "ISO-8859-1"}
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    broken = '{"customer_id": 2, "name": "Müller", '
    path = lake / "raw" / "crm" / "customers" / "customers_2026-11-01.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(customer(1), ensure_ascii=False) + "\n" + broken + "\n"
    path.write_bytes(gzip.compress(text.encode("iso-8859-1"), mtime=0))
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.rows_written, result.rule_violations) == (1, {"malformed": 1})
    assert query(aws, "SELECT lake_raw_record FROM sales.customers_quarantine") == [(broken,)]


def test_gzip_is_told_by_the_name_as_spark_does(spark, aws, deployed, lake, settings):
    """Spark decompresses by the extension: gzip content under another name was read as garbage
    and recorded ingested. Such a file now fails alone with the reason."""
    doc = orders_doc()
    doc["source"]["pattern"] = "orders_*"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    write_orders(lake, "orders_2026-11-02.csv", [order(2, day="2026-11-02")])  # gzip content, no .gz
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.files_failed, result.rows_written) == ("SUCCEEDED", 1, 1, 1)
    assert ledger_states(aws, settings)["orders_2026-11-02.csv"] == (
        "FAILED", "the contract says gzip, but the name does not end in .gz, and Spark decompresses by the extension")


def test_json_lines_in_latin_1(spark, aws, deployed, lake, settings):
    """Spark needs the line separator spelt out for JSON in an encoding other than UTF-8; without
    it every file failed."""
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    doc["format"]["options"] = {"encoding": "ISO-8859-1"}
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    path = lake / "raw" / "crm" / "customers" / "customers_2026-11-01.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(customer(1, name="Jürgen Müller"), ensure_ascii=False), json.dumps(customer(2))]
    path.write_bytes(gzip.compress(("\r\n".join(lines) + "\r\n").encode("latin-1"), mtime=0))
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.files_failed, result.rows_written) == ("SUCCEEDED", 0, 2)
    assert query(aws, "SELECT full_name FROM sales.customers ORDER BY customer_id") == [("Jürgen Müller",), ("C2",)]


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "US-ASCII"])
def test_json_lines_split_at_line_feeds_fail_a_file_with_a_bare_carriage_return(spark, aws, deployed, lake,
                                                                                 settings, encoding):
    """In any encoding but UTF-8 Spark's JSON reader needs a line separator (US-ASCII too: every
    file of such a contract failed) and then splits at LF only. A file whose lines end with a
    CR alone was read as one record: its other records vanished, and the file was recorded as
    ingested. It fails with the reason now; CRLF and LF files go through."""
    doc = yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text())
    doc["format"]["options"] = {"encoding": encoding}
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    folder = lake / "raw" / "crm" / "customers"
    folder.mkdir(parents=True, exist_ok=True)
    for day, end, ids in (("01", "\r", (1, 2, 3)), ("02", "\r\n", (4, 5)), ("03", "\n", (6,))):
        text = "".join(json.dumps(customer(i)) + end for i in ids)
        (folder / f"customers_2026-11-{day}.jsonl.gz").write_bytes(gzip.compress(text.encode(encoding), mtime=0))
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.files_failed) == ("SUCCEEDED", 2, 1)
    assert result.failed_files == {"crm/customers/customers_2026-11-01.jsonl.gz": JSON_BARE_CR}
    assert query(aws, "SELECT customer_id FROM sales.customers ORDER BY 1") == [(4,), (5,), (6,)]


def test_empty_objects_on_s3_are_recorded_empty(spark, aws, settings, tmp_path):
    """S3 refuses any byte range of a 0-byte object: the job must not ask for one."""
    s3_settings = JobSettings(raw_uri="s3://lake-raw", curated_uri=settings.curated_uri,
                              quarantine_uri=settings.quarantine_uri)
    bootstrap(aws, s3_settings)
    aws.s3.create_bucket(Bucket="lake-raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    aws.s3.put_object(Bucket="lake-raw", Key="erp/orders/orders_2026-11-01.csv.gz", Body=b"")
    aws.s3.put_object(Bucket="lake-raw", Key="plant/meter_readings/readings_2026-11-01.parquet", Body=b"")
    for dataset in ("orders", "meter_readings"):
        result = run_ingest(spark, dataset, "run-1", s3_settings, aws)
        assert (result.status, result.files_empty, result.files_failed) == ("SUCCEEDED", 1, 0), dataset
    assert ledger_states(aws, s3_settings) == {"orders_2026-11-01.csv.gz": ("EMPTY", "file has 0 bytes")}


def test_a_new_key_that_cannot_be_a_column_fails_its_file_only(spark, aws, deployed, lake, settings):
    """Additive policy: a new camelCase key (as the CRM's keys are) cannot become a table column
    as it is. Its file fails with the reason; the dataset's other files still go through."""
    write_customers(lake, "customers_2026-11-01.jsonl.gz", [customer(1)])
    write_customers(lake, "customers_2026-11-02.jsonl.gz", [customer(2, "2026-11-02", loyaltyTier="gold")])
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.files_failed, result.rows_written) == ("SUCCEEDED", 1, 1, 1)
    state, reason = ledger_states(aws, settings, "customers")["customers_2026-11-02.jsonl.gz"]
    assert state == "FAILED" and reason.startswith("new columns loyaltyTier are not usable table column names")


@pytest.mark.parametrize(("key", "clash"), [
    ("full_name", "a contract column"),  # the contract's column name, read from another source
    ("signupdate", "a source in another case"),  # Spark compares names without regard to case
    ("lake_source_file", "a column the job adds"),
])
def test_a_new_key_that_clashes_fails_its_file_only(spark, aws, deployed, lake, settings, key, clash):
    """Before, each of these failed the whole run, and every run after it."""
    contract = Contract.from_dict(yaml.safe_load((CONTRACTS_DIR / "customers.yaml").read_text()))
    assert key in {c.name for c in contract.columns} | {c.source_name.lower() for c in contract.columns} | {
        "lake_source_file"}, clash
    write_customers(lake, "customers_2026-11-01.jsonl.gz", [customer(1)])
    write_customers(lake, "customers_2026-11-02.jsonl.gz", [customer(2, "2026-11-02", **{key: "x"})])
    result = run_ingest(spark, "customers", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.files_failed, result.rows_written) == ("SUCCEEDED", 1, 1, 1)
    state, reason = ledger_states(aws, settings, "customers")["customers_2026-11-02.jsonl.gz"]
    assert (state, reason) == ("FAILED", f"new columns {key} clash with a contract column, a source name (names "
                                         "are compared without regard to case) or a column the job adds")


def test_dates_before_the_gregorian_calendar_are_written_as_they_are(spark, aws, deployed, lake, settings):
    """An ERP's placeholder 0001-01-01 (and any date before 1582-10-15): Spark refused to write
    it, which failed every run of the dataset."""
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2, day="0001-01-01"), order(3, day="1500-03-01")])
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (result.status, result.rows_written) == ("SUCCEEDED", 3)
    assert query(aws, "SELECT order_id, order_date, CAST(order_ts AS VARCHAR) FROM sales.orders ORDER BY 1") == [
        (1, dt.date(2026, 11, 1), "2026-11-01 09:00:00"), (2, dt.date(1, 1, 1), "0001-01-01 09:00:00"),
        (3, dt.date(1500, 3, 1), "1500-03-01 09:00:00")]


def test_a_unique_rule_ignores_rows_with_a_null_key(spark, aws, deployed, lake, settings):
    """As SQL's UNIQUE: a null equals nothing, so rows without a currency are not repeats."""
    doc = orders_doc()
    doc["quality"].append({"name": "unique_currency", "type": "unique", "column": "currency", "action": "reject"})
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz",
                 [order(1, currency="EUR"), order(2, currency=""), order(3, currency=""), order(4, currency="USD"),
                  order(5, currency="USD")])
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert result.rule_violations.get("unique_currency") == 2
    assert query(aws, "SELECT order_id FROM sales.orders ORDER BY 1") == [(1,), (2,), (3,)]


def test_a_file_removed_before_its_check_is_left_for_later(spark, aws, deployed, lake, settings, monkeypatch):
    """Between the listing and the first read of a file: it is gone, not failed, and the run goes on."""
    from lake_ingest import _job

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    doomed = write_orders(lake, "orders_2026-11-02.csv.gz", [order(2, day="2026-11-02")])
    original = _job._IngestRun._checked

    def remove_then_check(self, obj):
        if obj.key.endswith("11-02.csv.gz"):
            doomed.unlink()
        return original(self, obj)

    monkeypatch.setattr(_job._IngestRun, "_checked", remove_then_check)
    progress: list[str] = []
    result = run_ingest(spark, "orders", "run-1", settings, aws, on_progress=progress.append)
    assert (result.status, result.files_ingested, result.files_failed, result.files_pending) == ("SUCCEEDED", 1, 0, 1)
    assert "erp/orders/orders_2026-11-02.csv.gz: removed since it was listed; left for a later run" in progress
    assert list(ledger_states(aws, settings)) == ["orders_2026-11-01.csv.gz"]


@pytest.mark.parametrize("denied", [False, True], ids=["archived", "access-denied"])
def test_an_archived_or_forbidden_file_is_left_pending_until_it_can_be_read(spark, aws, deployed, lake, settings,
                                                                            monkeypatch, denied):
    """A raw file in S3 Glacier Flexible Retrieval or Deep Archive cannot be read until restored,
    nor one the job's role may not read (a producer's KMS key, a bucket policy). It is not failed
    (a restore or a granted permission keeps its ETag, so a failed entry would hold it out for
    good): it is left pending, and the run after the restore or the grant ingests it."""
    from lake_ingest._storage import ArchivedObjectError, LocalStorage

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(2, day="2026-11-02")])
    original = LocalStorage.read_range

    def archived(self, uri, start, length):
        if uri.endswith("11-02.csv.gz"):
            raise PermissionError(f"{uri}: AccessDenied: Access Denied") if denied else ArchivedObjectError(uri)
        return original(self, uri, start, length)

    monkeypatch.setattr(LocalStorage, "read_range", archived)
    if denied:  # not one new file may be read: the job's role or key, more likely than each file's
        def refused(self, uri, start, length):
            raise PermissionError(f"{uri}: AccessDenied: Access Denied")

        monkeypatch.setattr(LocalStorage, "read_range", refused)
        with pytest.raises(PermissionError, match=r"the job may read none of the 2 new files \(.*orders_2026-11-01"
                                                  r"\.csv\.gz: AccessDenied: Access Denied\): its role, the bucket "
                                                  "policy or a KMS key refuses it"):
            run_ingest(spark, "orders", "run-0", settings, aws)
        assert ledger_states(aws, settings) == {}
        assert metric_sum(aws, settings, "RunFailed") == 1
        names = {m["MetricName"] for m in aws.cloudwatch.list_metrics(Namespace=settings.metrics_namespace)["Metrics"]}
        assert "RowsRead" in names and not any(n.startswith("Files") for n in names)  # a failed run records no file
        monkeypatch.setattr(LocalStorage, "read_range", archived)
    progress: list[str] = []
    first = run_ingest(spark, "orders", "run-1", settings, aws, on_progress=progress.append)
    assert (first.status, first.files_ingested, first.files_failed, first.files_pending) == ("SUCCEEDED", 1, 0, 1)
    key = "erp/orders/orders_2026-11-02.csv.gz"
    assert (f"{key}: the job may not read it ({lake.as_posix()}/raw/{key}: AccessDenied: Access Denied); left for a "
            "later run" if denied else f"{key}: in an archive storage class; restore it and a later run ingests it"
            ) in progress
    assert list(ledger_states(aws, settings)) == ["orders_2026-11-01.csv.gz"]

    monkeypatch.setattr(LocalStorage, "read_range", original)  # restored
    second = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (second.files_ingested, second.files_pending) == (1, 0)
    assert query(aws, "SELECT order_id FROM sales.orders ORDER BY 1") == [(1,), (2,)]


def test_archived_files_take_no_place_among_the_files_of_a_run(spark, aws, deployed, lake, settings, monkeypatch):
    """A run takes at most max_files_per_run files in key order; archived files are left pending
    each time, so counting them would let enough of them stop the dataset for good."""
    from lake_ingest._storage import ArchivedObjectError, LocalStorage

    for day in ("01", "02", "03"):
        write_orders(lake, f"orders_2026-11-{day}.csv.gz", [order(int(day), day=f"2026-11-{day}")])
    original = LocalStorage.read_range

    def archived(self, uri, start, length):
        if uri.endswith(("11-01.csv.gz", "11-02.csv.gz")):
            raise ArchivedObjectError(uri)
        return original(self, uri, start, length)

    monkeypatch.setattr(LocalStorage, "read_range", archived)
    one_a_run = replace(settings, max_files_per_run=1)
    result = run_ingest(spark, "orders", "run-1", one_a_run, aws)
    assert (result.files_ingested, result.files_pending) == (1, 2)
    assert query(aws, "SELECT order_id FROM sales.orders") == [(3,)]


def test_a_key_that_spark_would_read_as_another_is_failed(spark, aws, deployed, lake, settings, monkeypatch):
    """S3 keys may hold '//', '.' or '..' segments, which Spark's file system drops or resolves:
    'erp/orders//x' would be read as 'erp/orders/x', another object. Such a file fails with the
    reason; the object it would have been read as is ingested once, on its own account."""
    from lake_ingest._storage import LocalStorage, ObjectInfo

    path = write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    original = LocalStorage.list

    def with_doubled_slash(self, root, prefix="", etags=True, keep=None):
        for obj in original(self, root, prefix, etags, keep):
            yield obj
            twin = obj.key.replace("orders/", "orders//")
            yield ObjectInfo(uri=obj.uri.replace("orders/", "orders//"), key=twin, size=obj.size, etag=obj.etag)

    monkeypatch.setattr(LocalStorage, "list", with_doubled_slash)
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (result.files_ingested, result.files_failed, result.rows_written) == (1, 1, 1)
    [(key, reason)] = result.failed_files.items()
    assert key == "erp/orders//orders_2026-11-01.csv.gz" and "would read another object" in reason
    assert query(aws, "SELECT order_id FROM sales.orders") == [(1,)]
    assert path.exists()


def test_a_key_too_long_for_a_dynamodb_sort_key_is_ingested_once(spark, aws, deployed, lake, settings):
    """S3 keys may have 1024 bytes, DynamoDB sort keys too: key and ETag together would not fit.
    The ledger keys such a file by the key's hash; a rerun finds it and reads nothing."""
    from lake_ingest._state import file_id

    name = "/".join(["d" * 200] * 5) + "/orders_2026-11-01.csv.gz"
    write_orders(lake, name, [order(1)])
    first = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (first.status, first.files_ingested, first.rows_written) == ("SUCCEEDED", 1, 1)
    [entry] = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).ledger("orders").values()
    assert entry.key == f"erp/orders/{name}" and len(entry.key) > 1024
    assert entry.file_id == file_id(entry.key, entry.etag) and entry.file_id.startswith("sha256:")
    second = run_ingest(spark, "orders", "run-2", settings, aws)
    assert (second.files_skipped, second.message) == (1, "nothing new to ingest")
    assert query(aws, "SELECT order_id FROM sales.orders") == [(1,)]


def test_the_same_bytes_under_a_new_etag_are_not_ingested_again(spark, aws, deployed, lake, settings, monkeypatch):
    """An ETag depends on the upload (a multipart upload's differs from a single PUT's; under
    SSE-KMS it is no digest at all): the same file delivered again under its key gets a new one.
    The content id (a checksum of the bytes) knows it; a corrected file is ingested as before."""
    from lake_ingest._storage import LocalStorage

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2)])
    assert run_ingest(spark, "orders", "run-1", settings, aws).rows_written == 2
    original = LocalStorage.list

    def reuploaded(self, root, prefix="", etags=True, keep=None):  # the ETag of a multipart upload
        for obj in original(self, root, prefix, etags, keep):
            yield replace(obj, etag=f"{obj.etag[:32]}-2") if etags else obj

    monkeypatch.setattr(LocalStorage, "list", reuploaded)
    progress: list[str] = []
    again = run_ingest(spark, "orders", "run-2", settings, aws, on_progress=progress.append)
    assert (again.rows_read, again.files_skipped, again.message) == (
        0, 1, "nothing new to ingest (1 file delivered again with the same content)")
    assert "erp/orders/orders_2026-11-01.csv.gz: delivered again with the same content, which run run-1 " \
           "ingested" in progress
    states = sorted((e.state, e.run_id) for e in StateStore(aws.dynamodb, settings.ledger_table,
                                                            settings.runs_table).ledger("orders").values())
    assert states == [("INGESTED", "run-1"), ("SAME_CONTENT", "run-2")]
    assert run_ingest(spark, "orders", "run-3", settings, aws).message == "nothing new to ingest"

    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2), order(3)])  # corrected
    assert run_ingest(spark, "orders", "run-4", settings, aws).rows_read == 3
    assert query(aws, "SELECT order_id, count(*) FROM sales.orders GROUP BY 1 ORDER BY 1") == [
        (1, 2), (2, 2), (3, 1)]  # append-only: a corrected file adds its rows


def test_s3_keys_with_url_characters_and_a_zone_that_is_a_key_prefix(spark, aws, settings):
    """'#' and '?' are part of an S3 key, not a URL fragment or query; and a zone given as
    s3://bucket/raw lists below raw/ only, not raw-archive/ beside it."""
    from lake_ingest._storage import S3Storage

    aws.s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key in ("raw/erp/orders/orders_#1?.csv.gz", "raw-archive/erp/orders/orders_old.csv.gz", "rawx.csv"):
        aws.s3.put_object(Bucket="lake", Key=key, Body=b"abc")
    storage = S3Storage(aws.s3)
    listed = [o.key for o in storage.list("s3://lake/raw")]
    assert listed == ["erp/orders/orders_#1?.csv.gz"]
    assert storage.read_range("s3://lake/raw/erp/orders/orders_#1?.csv.gz", 0, 2) == b"ab"
    with pytest.raises(FileNotFoundError):
        storage.read_range("s3://lake/raw/erp/orders/nope.csv.gz", 0, 2)
    assert storage.delete_prefix("s3://lake/raw/erp") == 1 and [o.key for o in storage.list("s3://lake/raw")] == []


def test_csv_with_comment_and_blank_lines_before_the_header(spark, aws, deployed, lake, settings):
    doc = orders_doc()
    doc["format"]["options"]["comment"] = "#"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    path = lake / "raw" / "erp" / "orders" / "orders_2026-11-01.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# export of 2026-11-01", "", ",".join(HEADER), ",".join(order(1)), "# end of part 1", ",".join(order(2))]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (result.status, result.files_ingested, result.rows_read, result.rows_written) == ("SUCCEEDED", 1, 2, 2)
    assert query(aws, "SELECT order_id FROM sales.orders ORDER BY 1") == [(1,), (2,)]


def test_fail_rule_fails_the_run_and_leaves_nothing_visible(spark, aws, deployed, lake, settings):
    doc = orders_doc()
    doc["quality"][1]["action"] = "fail"  # amount_in_range
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2, amount="-5.00")])
    with pytest.raises(DataQualityError, match="amount_in_range=1"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    record = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table).get_run("orders", "run-1")
    assert record["status"] == "FAILED" and "amount_in_range" in record["error"]
    # read, judged, and nothing written: the failed run does not count rows no query will see
    assert (record["rows_read"], record["rows_written"], record["rows_quarantined"]) == (2, 0, 0)
    assert record["rule_violations"] == {"amount_in_range": 1}
    assert metric_sum(aws, settings, "RowsWritten") == 0 and metric_sum(aws, settings, "RunFailed") == 1
    assert ledger_states(aws, settings) == {}
    assert not list((lake / "curated").rglob("*.parquet"))
    with pytest.raises(aws.glue.exceptions.EntityNotFoundException):
        aws.glue.get_table(DatabaseName="sales", Name="orders")


@pytest.mark.parametrize("footers_by", ["pyarrow", "spark"])
def test_parquet_dataset_with_unique_rule(spark, aws, deployed, lake, settings, monkeypatch, footers_by):
    from lake_ingest import _job
    from lake_ingest.local.sample_data import generate_extracts

    monkeypatch.setattr(_job, "HAVE_PYARROW", footers_by == "pyarrow")

    generate_extracts(lake / "raw", days=2, rows_per_file=960, datasets=["meter_readings"])
    (lake / "raw/plant/meter_readings/readings_2026-11-09.parquet").write_bytes(b"PAR1 not really PAR1")
    result = run_ingest(spark, "meter_readings", "run-1", settings, aws)
    assert result.files_ingested == 2 and result.files_failed == 1
    # what the contract's rules find in the two good files, worked out here with pyarrow
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = pa.concat_tables([pq.read_table(p) for p in sorted((lake / "raw/plant/meter_readings").glob("*.parquet"))
                            if p.name != "readings_2026-11-09.parquet"]).to_pylist()
    found: list[tuple[str, str]] = []  # (meter_id, rule) of every violation that rejects its row
    for r in raw:
        found += [(r["meter_id"], "kwh_plausible")] * (not 0 <= r["kwh"] <= 500)
        found += [(r["meter_id"], "status_known")] * (r["status"] not in ("OK", "ESTIMATED", "ERROR"))
    valid = [r for r in raw if 0 <= r["kwh"] <= 500 and r["status"] in ("OK", "ESTIMATED", "ERROR")]
    slots = Counter((r["meter_id"], r["reading_ts"]) for r in valid)
    found += [(r["meter_id"], "one_reading_per_slot") for r in valid if slots[(r["meter_id"], r["reading_ts"])] > 1]
    warned = sum(r["voltage"] is not None and not 207 <= r["voltage"] <= 253 for r in raw)
    expected = Counter(rule for _, rule in found)
    assert len(expected) == 3 and min(expected.values()) >= 2 and warned > 0  # the data has each defect
    assert result.rule_violations == {**expected, "voltage_nominal": warned}
    repeated = sum(n for n in slots.values() if n > 1)
    assert (result.rows_read, result.rows_quarantined) == (len(raw), len(raw) - len(valid) + repeated)
    bad = query(aws, "SELECT meter_id, v.rule FROM plant.meter_readings_quarantine, UNNEST(lake_violations) AS t(v)")
    assert Counter(bad) == Counter(found)
    dupes = query(aws, "SELECT count(*) FROM (SELECT meter_id, reading_ts FROM plant.meter_readings "
                       "GROUP BY 1, 2 HAVING count(*) > 1)")
    assert dupes == [(0,)]
    assert query(aws, "SELECT count(*) FROM plant.meter_readings") == [(result.rows_written,)]
    assert query(aws, "SELECT max(kwh) <= 500, min(reading_date) FROM plant.meter_readings") == [
        (True, dt.date(2026, 11, 1))]


def test_a_parquet_file_of_no_rows_is_recorded_empty(spark, aws, deployed, lake, settings):
    """A writer leaves a file with the schema and no row groups for an empty partition: its
    footer says so, and it is recorded as empty, like a text file without data rows."""
    import pyarrow.parquet as pq

    from lake_ingest.local.sample_data import generate_extracts

    generate_extracts(lake / "raw", days=1, rows_per_file=200, datasets=["meter_readings"])
    raw = lake / "raw" / "plant" / "meter_readings"
    [full] = sorted(raw.glob("*.parquet"))
    table = pq.read_table(full)
    pq.write_table(table.slice(0, 0), raw / "readings_2026-11-30.parquet")
    pq.write_table(table.slice(0, 0).drop_columns([table.column_names[0]]), raw / "readings_2026-12-01.parquet")
    result = run_ingest(spark, "meter_readings", "run-1", settings, aws)
    assert (result.files_ingested, result.files_empty, result.files_failed) == (1, 1, 1)
    ledger = ledger_states(aws, settings, "meter_readings")
    assert ledger["readings_2026-11-30.parquet"] == ("EMPTY", "Parquet file holds no rows")
    assert ledger["readings_2026-12-01.parquet"][0] == "FAILED"  # its columns are judged first
    assert result.rows_read == table.num_rows


@pytest.mark.parametrize("footers_by", ["pyarrow", "spark"])
def test_parquet_files_whose_types_drifted(spark, aws, deployed, lake, settings, monkeypatch, footers_by):
    """One export wrote kwh as float and voltage as text, another as the contract's decimal and
    double. Each layout is read with its own types and converted to the contract's; a value that
    does not convert is quarantined with its text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lake_ingest import _job

    monkeypatch.setattr(_job, "HAVE_PYARROW", footers_by == "pyarrow")
    raw = lake / "raw" / "plant" / "meter_readings"
    raw.mkdir(parents=True)
    ts = [dt.datetime(2026, 11, 1, h, tzinfo=dt.UTC) for h in (1, 2)]
    base = {"meter_id": ["m1", "m2"], "reading_ts": ts, "reading_date": [dt.date(2026, 11, 1)] * 2,
            "status": ["OK", "OK"]}
    pq.write_table(pa.table({**base, "kwh": pa.array([Decimal("1.250"), Decimal("2.500")], pa.decimal128(10, 3)),
                             "voltage": [230.0, 231.0]}), raw / "readings_2026-11-01.parquet")
    pq.write_table(pa.table({**base, "meter_id": ["m3", "m4"], "kwh": [3.75, 4.5],
                             "voltage": ["232.5", "n/a"]}), raw / "readings_2026-11-02.parquet")

    result = run_ingest(spark, "meter_readings", "run-1", settings, aws)

    assert (result.status, result.files_ingested, result.rows_read, result.rows_written) == ("SUCCEEDED", 2, 4, 3)
    assert query(aws, "SELECT meter_id, kwh, voltage FROM plant.meter_readings ORDER BY 1") == [
        ("m1", Decimal("1.250"), 230.0), ("m2", Decimal("2.500"), 231.0), ("m3", Decimal("3.750"), 232.5)]
    assert query(aws, "SELECT meter_id, voltage, v.rule FROM plant.meter_readings_quarantine, "
                      "UNNEST(lake_violations) AS t(v)") == [("m4", "n/a", "type:voltage")]


def _parquet_doc(dataset: str, columns: list[dict], **extra) -> dict:
    """A Parquet dataset of the ``plant`` database, files under ``raw/src/<dataset>/``."""
    return {"dataset_id": dataset, "version": 1, "enabled": True, "source": {
        "bucket": "raw", "prefix": f"src/{dataset}/", "pattern": "*.parquet"}, "format": {"type": "parquet"},
        "columns": columns, "target": {"database": "plant", "table": dataset}, **extra}


def test_source_names_with_a_backtick_are_read(spark, aws, deployed, lake, settings):
    """A backtick in a source column's name passed validation, then the reader quoted the name
    without doubling it: a CSV run with de-duplication stopped on a parse error, and every Parquet
    file was marked failed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [{"name": "id", "type": "bigint", "nullable": False}, {"name": "note", "type": "string", "source": "it`s"}]
    csv_doc = {**_parquet_doc("ticks_csv", columns, primary_key=["id"], deduplicate=True), "format": {"type": "csv"}}
    csv_doc["source"]["pattern"] = "*.csv"
    ContractStore(aws.dynamodb, settings.contracts_table).put([csv_doc, _parquet_doc("ticks_pq", columns)])
    for dataset in ("ticks_csv", "ticks_pq"):
        (lake / "raw" / "src" / dataset).mkdir(parents=True)
    (lake / "raw" / "src" / "ticks_csv" / "a.csv").write_text("id,it`s\n1,x\n1,y\n2,z\n")
    pq.write_table(pa.table({"id": [1, 2], "it`s": ["x", "y"]}), lake / "raw" / "src" / "ticks_pq" / "a.parquet")

    result = run_ingest(spark, "ticks_csv", "run-1", settings, aws)
    assert (result.status, result.rows_read, result.rows_written, result.rows_quarantined) == ("SUCCEEDED", 3, 2, 1)
    assert sorted(query(aws, "SELECT id FROM plant.ticks_csv")) == [(1,), (2,)]
    result = run_ingest(spark, "ticks_pq", "run-1", settings, aws)
    assert (result.status, result.files_failed) == ("SUCCEEDED", 0)
    assert query(aws, "SELECT id, note FROM plant.ticks_pq ORDER BY id") == [(1, "x"), (2, "y")]


def test_a_parquet_file_of_other_types_does_not_change_another_files_values(spark, aws, deployed, lake, settings):
    """One export holds the contract's types, another the same columns as double and as a
    decimal of another scale. A union would take both files' values through the wider type:
    bigints above 2^53 rounded (two keys became one, and de-duplication quarantined a valid row)
    and a decimal(38,0) of 10^30 nulled. Such columns are read as text in both files instead."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    doc = _parquet_doc("mixed", [{"name": "id", "type": "bigint", "nullable": False},
                                 {"name": "big", "type": "decimal(38,0)"}, {"name": "v", "type": "string"}],
                       primary_key=["id"], deduplicate={"order_by": []})
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    raw = lake / "raw" / "src" / "mixed"
    raw.mkdir(parents=True)
    pq.write_table(pa.table({"id": pa.array([2**53, 2**53 + 1], pa.int64()),
                             "big": pa.array([Decimal(10**30), Decimal(7)], pa.decimal128(38, 0)),
                             "v": ["first", "second"]}), raw / "a.parquet")
    pq.write_table(pa.table({"id": pa.array([1.0, 2.5, 5.0], pa.float64()),
                             "big": pa.array([None, None, None], pa.decimal128(38, 10)),
                             "v": ["third", "fourth", "fifth, older"]}), raw / "b.parquet")
    pq.write_table(pa.table({"id": pa.array([5], pa.int64()),
                             "big": pa.array([Decimal("3.0000000000")], pa.decimal128(38, 10)),
                             "v": ["fifth"]}), raw / "c.parquet")

    result = run_ingest(spark, "mixed", "run-1", settings, aws)

    # 5.0 in b and 5 in c are one key: the later file's row wins
    assert (result.rows_written, result.rule_violations) == (4, {"type:id": 1, "duplicate": 1})
    assert query(aws, "SELECT id, big, v FROM plant.mixed ORDER BY id") == [
        (1, None, "third"), (5, Decimal(3), "fifth"), (2**53, Decimal(10**30), "first"),
        (2**53 + 1, Decimal(7), "second")]
    # each file's values are converted from its own type; a rejected row keeps the value as text
    assert query(aws, "SELECT id, v FROM plant.mixed_quarantine ORDER BY v") == [("5", "fifth, older"),
                                                                                ("2.5", "fourth")]


def test_null_markers_apply_to_text_only_when_files_hold_a_column_in_two_types(spark, aws, deployed, lake, settings):
    """A double NaN is a value, as when its file is read alone: the marker 'NaN' is for text (the
    mixed column becomes text before the union, after its conversion)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    doc = {**_parquet_doc("markers", [{"name": "k", "type": "string", "nullable": False},
                                      {"name": "v", "type": "double", "nullable": False}]),
           "format": {"type": "parquet", "null_values": ["NaN"]}}
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    raw = lake / "raw" / "src" / "markers"
    raw.mkdir(parents=True)
    pq.write_table(pa.table({"k": ["typed"], "v": pa.array([float("nan")])}), raw / "a.parquet")
    pq.write_table(pa.table({"k": ["text", "marker"], "v": ["1.5", "NaN"]}), raw / "b.parquet")

    result = run_ingest(spark, "markers", "run-1", settings, aws)

    assert result.rule_violations == {"not_null:v": 1}  # the text 'NaN' is the marker
    rows = dict(query(aws, "SELECT k, v FROM plant.markers"))
    assert rows.keys() == {"typed", "text"} and rows["text"] == 1.5 and rows["typed"] != rows["typed"]  # NaN


def test_typed_parquet_values_that_a_conversion_would_change_are_rejected(spark, aws, deployed, lake, settings):
    """Spark's cast truncates 2.999 to 2, reads a timestamp as its day and an int 2 as true; such
    values are quarantined. Exact ones convert, and a struct is kept as JSON in a string column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    doc = _parquet_doc("typed", [{"name": "k", "type": "string", "nullable": False},
                                 {"name": "qty", "type": "bigint"}, {"name": "day", "type": "date"},
                                 {"name": "ok", "type": "boolean"}, {"name": "big", "type": "double"},
                                 {"name": "info", "type": "string"}])
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    raw = lake / "raw" / "src" / "typed"
    raw.mkdir(parents=True)
    midnight, noon = dt.datetime(2026, 1, 2, tzinfo=dt.UTC), dt.datetime(2026, 1, 3, 12, tzinfo=dt.UTC)
    pq.write_table(pa.table({
        "k": ["exact", "qty", "day", "ok", "big"],
        "qty": pa.array([2.0, 2.999, 1.0, 1.0, 1.0]),
        "day": pa.array([midnight, midnight, noon, midnight, midnight]),
        "ok": pa.array([1, 0, 1, 2, 0], pa.int32()),
        "big": pa.array([2**53, 1, 1, 1, 2**53 + 1], pa.int64()),
        "info": pa.array([{"a": 1, "b": "x"}] * 5),
    }), raw / "a.parquet")

    # the same columns in other types, in a second file of the same run: each file is converted
    # from its own types (a union would have taken the noon timestamp through a date)
    pq.write_table(pa.table({"k": ["b-exact", "b-day"], "qty": pa.array([7, 8], pa.int64()),
                             "day": pa.array([dt.date(2026, 1, 4)] * 2), "ok": pa.array([True, False]),
                             "big": pa.array([0.1, 0.2]), "info": ["text", "more"]}), raw / "b.parquet")

    result = run_ingest(spark, "typed", "run-1", settings, aws)

    assert result.rule_violations == {"type:qty": 1, "type:day": 1, "type:ok": 1}
    # a double keeps the nearest value (2^53 + 1 as 2^53), as from text
    assert query(aws, "SELECT k, qty, day, ok, big, info FROM plant.typed ORDER BY k") == [
        ("b-day", 8, dt.date(2026, 1, 4), False, 0.2, "more"),
        ("b-exact", 7, dt.date(2026, 1, 4), True, 0.1, "text"),
        ("big", 1, dt.date(2026, 1, 2), False, float(2**53), '{"a":1,"b":"x"}'),
        ("exact", 2, dt.date(2026, 1, 2), True, float(2**53), '{"a":1,"b":"x"}')]
    assert query(aws, "SELECT k, v.rule FROM plant.typed_quarantine, UNNEST(lake_violations) AS t(v) ORDER BY k") == [
        ("day", "type:day"), ("ok", "type:ok"), ("qty", "type:qty")]


def test_parquet_bytes_and_nested_values_reach_string_columns_as_readable_text(spark, aws, deployed, lake,
                                                                               settings):
    """A Parquet BINARY column (no UTF-8 annotation) into a string column: bytes that are not
    UTF-8 were written as they are, and no reader (Athena, DuckDB, pyarrow) could read the table
    after. Such a row is quarantined, its raw value decoded with U+FFFD; a new column of the
    additive policy keeps bytes decoded the same way and a struct as its JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    doc = _parquet_doc("blobs", [{"name": "k", "type": "string", "nullable": False},
                                 {"name": "name", "type": "string"}], schema_evolution="additive")
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    raw = lake / "raw" / "src" / "blobs"
    raw.mkdir(parents=True)
    pq.write_table(pa.table({
        "k": ["utf8", "latin1"],
        "name": pa.array([b"caf\xc3\xa9", b"caf\xe9"], pa.binary()),
        "note": pa.array([b"ok", b"\xff"], pa.binary()),
        "info": pa.array([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]),
    }), raw / "a.parquet")
    result = run_ingest(spark, "blobs", "run-1", settings, aws)
    assert (result.status, result.rows_written, result.rule_violations) == ("SUCCEEDED", 1, {"type:name": 1})
    assert query(aws, "SELECT k, name, note, info FROM plant.blobs") == [("utf8", "café", "ok", '{"a":1,"b":"x"}')]
    assert query(aws, "SELECT k, name, note, info FROM plant.blobs_quarantine") == [
        ("latin1", "caf\ufffd", "\ufffd", '{"a":2,"b":"y"}')]


def test_partition_values_that_cannot_be_written_are_rejected(spark, aws, deployed, lake, settings):
    """Spark writes '' in a partition column as Hive's null directory, which every reader takes
    as NULL, and a value too long for a directory name failed the write of every run: such rows
    are quarantined with the reason instead (here from JSON Lines)."""
    doc = {**_parquet_doc("regions", [{"name": "id", "type": "int", "nullable": False},
                                      {"name": "region", "type": "string", "nullable": False}],
                          partition_by=["region"]),
           "format": {"type": "jsonl", "null_values": ["NULL"]}}
    doc["source"]["pattern"] = "*.jsonl"
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    raw = lake / "raw" / "src" / "regions"
    raw.mkdir(parents=True)
    # 'region=' and 248 plain bytes make a 255-byte directory name; 90 slashes escape to 270 bytes
    rows = [(1, ""), (2, "EU"), (3, " "), (4, "a" * 248), (5, "a" * 249), (6, "/" * 90),
            (7, "__HIVE_DEFAULT_PARTITION__"), (8, "__hive_default_partition__")]
    (raw / "a.jsonl").write_text("".join(json.dumps({"id": i, "region": r}) + "\n" for i, r in rows))

    result = run_ingest(spark, "regions", "run-1", settings, aws)

    assert query(aws, "SELECT id, region FROM plant.regions ORDER BY id") == [
        (2, "EU"), (3, " "), (4, "a" * 248), (8, "__hive_default_partition__")]
    assert result.rule_violations == {"type:region": 4}
    details = query(aws, "SELECT id, v.detail FROM plant.regions_quarantine, UNNEST(lake_violations) AS t(v) "
                         "ORDER BY id")
    assert [d[0] for d in details] == ["1", "5", "6", "7"]
    assert details[0][1] == ("cannot read region='' as string: an empty partition value, __HIVE_DEFAULT_PARTITION__ "
                             "(read back as null), or one longer than its directory name allows (255 bytes)")


def test_a_typed_column_removed_from_the_contract_is_named_as_the_cause(spark, aws, deployed, lake, settings):
    """The table keeps a column the contract dropped. The run used to fail with 'qty is int in
    the catalog, the job would write string', which named neither the cause nor the fix."""
    doc = {**_parquet_doc("dropped", [{"name": "id", "type": "int", "nullable": False},
                                      {"name": "qty", "type": "int"}]), "format": {"type": "jsonl"}}
    doc["source"]["pattern"] = "*.jsonl"
    store = ContractStore(aws.dynamodb, settings.contracts_table)
    store.put([doc])
    raw = lake / "raw" / "src" / "dropped"
    raw.mkdir(parents=True)
    (raw / "1.jsonl").write_text('{"id": 1, "qty": 5}\n')
    assert run_ingest(spark, "dropped", "run-1", settings, aws).rows_written == 1
    store.put([{**doc, "version": 2, "columns": doc["columns"][:1]}])
    (raw / "2.jsonl").write_text('{"id": 2}\n')
    with pytest.raises(SchemaConflict, match=r"plant\.dropped\.qty is int in the catalog but not in "
                                             r"contract 'dropped': .* declare it, nullable"):
        run_ingest(spark, "dropped", "run-2", settings, aws)
    store.put([{**doc, "version": 3}])  # declared again: the run goes through, qty null in the new row
    assert run_ingest(spark, "dropped", "run-3", settings, aws).rows_written == 1
    assert query(aws, "SELECT id, qty FROM plant.dropped ORDER BY id") == [(1, 5), (2, None)]


def test_dataset_lock_refuses_a_second_live_run(spark, aws, deployed, lake, settings):
    store = StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1)])
    with store.dataset_lock("orders", "someone-else", 600):
        result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert result.status == "LOCKED" and "locked by run someone-else" in result.message
    assert run_ingest(spark, "orders", "run-2", settings, aws).rows_written == 1


def test_max_files_per_run_leaves_the_rest_for_later(spark, aws, deployed, lake, settings):
    for day in (1, 2, 3):
        write_orders(lake, f"orders_2026-11-0{day}.csv.gz", [order(day, day=f"2026-11-0{day}")])
    small = JobSettings(**{**settings.__dict__, "max_files_per_run": 2})
    first = run_ingest(spark, "orders", "run-1", small, aws)
    assert (first.files_ingested, first.files_pending) == (2, 1)
    second = run_ingest(spark, "orders", "run-2", small, aws)
    assert (second.files_ingested, second.files_pending) == (1, 0)
    assert query(aws, "SELECT order_id FROM sales.orders ORDER BY 1") == [(1,), (2,), (3,)]


def test_bad_run_id_is_refused(spark, aws, deployed, settings):
    with pytest.raises(ValueError, match="run id"):
        run_ingest(spark, "orders", "../escape", settings, aws)


def _orders_with_repeats(lake):
    write_orders(lake, "orders_2026-11-01.csv.gz", [
        order(1), order(2, status="PAID"), order(2, status="SHIPPED", updated="15:00:00"),
        order(3, status="SHIPPD", updated="16:00:00"), order(3, status="PAID"),   # newer copy is invalid
        order(4, currency="XXX"), order(4, status="PAID", updated="11:00:00"),  # warned copy superseded
    ])
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(2, day="2026-10-31", status="CANCELLED"),
                                                    order(5, day="2026-11-02")])


@pytest.mark.parametrize(("max_repeated", "one_task"), [(0, 1000), (1000, 1000), (1000, 0)])
def test_repeated_keys_settled_after_the_main_pass_or_in_one_window(spark, aws, deployed, lake, settings,
                                                                  monkeypatch, max_repeated, one_task):
    """Both plans of the de-duplication (and settling in one task or with a shuffle) give the
    same tables and counts; nothing pending is left."""
    from lake_ingest import _job

    monkeypatch.setattr(_job, "MAX_REPEATED_KEYS", max_repeated)
    monkeypatch.setattr(_job, "SETTLE_IN_ONE_TASK", one_task)
    _orders_with_repeats(lake)
    messages = []
    result = run_ingest(spark, "orders", "run-1", settings, aws, on_progress=messages.append)
    assert (result.rows_read, result.rows_written, result.rows_quarantined, result.rows_warned) == (9, 5, 4, 1)
    assert result.rule_violations == {"duplicate": 3, "status_known": 1, "currency_known": 1}
    settled = any("settled after the main pass" in m for m in messages)
    assert settled == (max_repeated > 0)
    assert not list(lake.rglob("lake_valid=pending")) and not list(lake.rglob("lake_valid=false"))
    assert query(aws, "SELECT order_id, status, order_date FROM sales.orders ORDER BY 1") == [
        (1, "NEW", dt.date(2026, 11, 1)), (2, "SHIPPED", dt.date(2026, 11, 1)), (3, "PAID", dt.date(2026, 11, 1)),
        (4, "PAID", dt.date(2026, 11, 1)), (5, "NEW", dt.date(2026, 11, 2))]
    bad = query(aws, "SELECT order_id, status, lake_raw_record, v.rule FROM sales.orders_quarantine, "
                     "UNNEST(lake_violations) AS t(v) ORDER BY 1, 2, 4")
    assert bad == [("2", "CANCELLED", None, "duplicate"), ("2", "PAID", None, "duplicate"),
                   ("3", "SHIPPD", None, "status_known"), ("4", "NEW", None, "currency_known"),
                   ("4", "NEW", None, "duplicate")]
    # every row, valid, settled or rejected, names the file it came from
    source = "regexp_extract(lake_source_file, '[^/]+$')"
    day1, day2 = "orders_2026-11-01.csv.gz", "orders_2026-11-02.csv.gz"
    assert query(aws, f"SELECT order_id, {source} FROM sales.orders ORDER BY 1") == [
        (1, day1), (2, day1), (3, day1), (4, day1), (5, day2)]
    assert query(aws, f"SELECT order_id, status, {source} FROM sales.orders_quarantine ORDER BY 1, 2") == [
        ("2", "CANCELLED", day2), ("2", "PAID", day1), ("3", "SHIPPD", day1), ("4", "NEW", day1)]


@pytest.mark.parametrize("max_repeated", [0, 1000])
def test_dedupe_and_a_unique_rule_on_other_columns(spark, aws, deployed, lake, settings, monkeypatch, max_repeated):
    """Two key sets, the primary key and a unique rule's columns (not the first fields of a
    line): both plans give the same tables."""
    from lake_ingest import _job

    monkeypatch.setattr(_job, "MAX_REPEATED_KEYS", max_repeated)
    doc = orders_doc()
    doc["quality"].append({"name": "one_order_per_customer_day", "type": "unique",
                           "columns": ["customer_id", "order_date"], "action": "reject"})
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz", [
        order(1, cust="1"), order(2, cust="2", status="PAID"), order(2, cust="2", status="SHIPPED", updated="15:00:00"),
        order(3, cust="3"), order(4, cust="3")])  # customer 3 orders twice on one day
    write_orders(lake, "orders_2026-11-02.csv.gz", [order(5, cust="3", day="2026-11-02")])
    messages = []

    result = run_ingest(spark, "orders", "run-1", settings, aws, on_progress=messages.append)

    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (6, 3, 3)
    assert result.rule_violations == {"duplicate": 1, "one_order_per_customer_day": 2}
    settled = [m for m in messages if "settled after the main pass" in m]
    # order 2 (twice in both sets), customer 3 on 1 November, and in each set the two header
    # lines, whose text reads as a null key
    assert settled == ([] if max_repeated == 0 else [
        "2 values of (order_id) occur more than once (may include the header's text, read as a key); "
        "their rows are settled after the main pass",
        "3 values of (customer_id, order_date) occur more than once (may include the header's text, read as "
        "a key); their rows are settled after the main pass"])
    assert query(aws, "SELECT order_id, customer_id, status FROM sales.orders ORDER BY 1") == [
        (1, 1, "NEW"), (2, 2, "SHIPPED"), (5, 3, "NEW")]
    assert query(aws, "SELECT order_id, status, v.rule FROM sales.orders_quarantine, UNNEST(lake_violations) AS t(v) "
                      "ORDER BY 1, 2") == [("2", "PAID", "duplicate"), ("3", "NEW", "one_order_per_customer_day"),
                                           ("4", "NEW", "one_order_per_customer_day")]


def test_unique_rule_that_fails_the_run_among_repeated_keys(spark, aws, deployed, lake, settings):
    doc = orders_doc()
    doc["deduplicate"] = None
    doc["quality"].append({"name": "one_row_per_order", "type": "unique", "columns": ["order_id"], "action": "fail"})
    ContractStore(aws.dynamodb, settings.contracts_table).put([doc])
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1), order(2), order(2, updated="11:00:00")])
    with pytest.raises(DataQualityError, match="one_row_per_order=2"):
        run_ingest(spark, "orders", "run-1", settings, aws)
    assert not list((lake / "curated").rglob("*.parquet")) and ledger_states(aws, settings) == {}


def test_bad_values_in_typed_columns_each_get_their_reason(spark, aws, deployed, lake, settings):
    """Numbers, dates and timestamps that do not convert, null markers, a quoted empty field and a
    line with a field too many: each row is kept or quarantined with the exact cause."""
    path = lake / "raw" / "erp" / "orders" / "orders_2026-11-01.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(HEADER),
             ",".join(order(1)),
             ",".join(order(2, cust=" 7 ")),                     # the cast trims spaces: kept
             ",".join(order(3, cust="NULL")),                    # a null marker in a typed column
             ",".join(order(4, cust='""')),                      # quoted empty: null too
             ",".join(order(5, day="2026-11-1")),                # date not as the pattern says
             ",".join(order(6)).replace("2026-11-01 09:00:00", "2026-11-01T09:00:00"),
             ",".join(order(7)) + ",surplus",                    # one field too many: malformed
             ",".join(order(8, amount='"1,000.00"')),          # decimals stay text: no thousands commas
             ",".join(order(9, cust="x9"))]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (9, 2, 7)
    assert query(aws, "SELECT order_id, customer_id FROM sales.orders ORDER BY 1") == [(1, 7), (2, 7)]
    bad = query(aws, "SELECT order_id, customer_id, order_date, order_ts, v.rule, v.detail, lake_raw_record "
                     "FROM sales.orders_quarantine, UNNEST(lake_violations) AS t(v) ORDER BY 1, 5")
    assert bad == [
        ("3", None, "2026-11-01", "2026-11-01 09:00:00", "not_null:customer_id", "CUSTOMER_ID is missing", None),
        ("4", None, "2026-11-01", "2026-11-01 09:00:00", "not_null:customer_id", "CUSTOMER_ID is missing", None),
        ("5", "7", "2026-11-1", "2026-11-1 09:00:00", "type:order_date",
         "cannot read ORDER_DATE='2026-11-1' as date 'yyyy-MM-dd'", None),
        ("5", "7", "2026-11-1", "2026-11-1 09:00:00", "type:order_ts",
         "cannot read ORDER_TS='2026-11-1 09:00:00' as timestamp 'yyyy-MM-dd HH:mm:ss'", None),
        ("5", "7", "2026-11-1", "2026-11-1 09:00:00", "type:updated_at",
         "cannot read UPDATED_AT='2026-11-1 10:00:00' as timestamp 'yyyy-MM-dd HH:mm:ss'", None),
        ("6", "7", "2026-11-01", "2026-11-01T09:00:00", "type:order_ts",
         "cannot read ORDER_TS='2026-11-01T09:00:00' as timestamp 'yyyy-MM-dd HH:mm:ss'", None),
        ("7", "7", "2026-11-01", "2026-11-01 09:00:00", "malformed", "the record could not be parsed", lines[7]),
        ("8", "7", "2026-11-01", "2026-11-01 09:00:00", "type:amount",
         "cannot read AMOUNT='1,000.00' as decimal(12,2)", None),
        ("9", "x9", "2026-11-01", "2026-11-01 09:00:00", "type:customer_id",
         "cannot read CUSTOMER_ID='x9' as bigint", None),
    ]


def test_a_long_reason_is_cut_before_it_is_recorded(spark, aws, deployed, lake, settings):
    """Reasons go to the ledger and twice into the run record, a DynamoDB item of at most 400 KB:
    each is cut to MAX_REASON characters."""
    from lake_ingest._job import MAX_REASON

    extra = [f"EXTRA_{i:02d}_" + "X" * 80 for i in range(30)]
    write_orders(lake, "orders_2026-11-01.csv.gz", [order(1) + ["x"] * 30], header=HEADER + extra)
    result = run_ingest(spark, "orders", "run-1", settings, aws)
    [reason] = result.failed_files.values()
    assert reason.startswith(f"unexpected columns {extra[0]}, {extra[1]}") and reason.endswith("…")
    assert len(reason) == MAX_REASON
    assert ledger_states(aws, settings)["orders_2026-11-01.csv.gz"] == ("FAILED", reason)
