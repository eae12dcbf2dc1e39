"""Tests for the deterministic on-premise sample extracts."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from lake_ingest._contract import Contract
from lake_ingest.local import sample_data as sd

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "glue_jobs" / "contracts"
ROWS = 400
DAYS = 3


def _contracts() -> dict[str, Contract]:
    out = {}
    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        contract = Contract.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
        out[contract.dataset_id] = contract
    return out


@pytest.fixture(scope="module")
def contracts() -> dict[str, Contract]:
    return _contracts()


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    sd.generate_extracts(root, days=DAYS, rows_per_file=ROWS, seed=11)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _by_dataset(root: Path, contracts: dict[str, Contract]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        matching = [c.dataset_id for c in contracts.values() if c.source.matches(key)]
        assert len(matching) == 1, key
        out[matching[0]].append(path)
    return out


def _csv_rows(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter=",", quotechar='"'))


def _json_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def _one(sql: str) -> tuple[Any, ...] | None:
    with duckdb.connect() as con:
        return con.execute(sql).fetchone()


def _parsed(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


# -- determinism and layout --------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = sd.generate_extracts(tmp_path / "a", days=2, rows_per_file=300, seed=3)
    b = sd.generate_extracts(tmp_path / "b", days=2, rows_per_file=300, seed=3)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(files_a) == 6
    assert files_a == files_b


def test_other_seed_gives_other_content(tmp_path: Path) -> None:
    sd.generate_extracts(tmp_path / "a", days=1, rows_per_file=300, seed=3)
    sd.generate_extracts(tmp_path / "b", days=1, rows_per_file=300, seed=4)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a.keys() == files_b.keys()
    for key in files_a:
        assert files_a[key] != files_b[key], key


def test_gzip_header_carries_no_timestamp(raw: Path) -> None:
    for path in raw.rglob("*.gz"):
        assert path.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # MTIME field


def test_files_match_the_contract_sources(raw: Path, contracts: dict[str, Contract]) -> None:
    by_dataset = _by_dataset(raw, contracts)
    assert set(by_dataset) == set(sd.DATASETS) == set(contracts)
    for dataset_id, paths in by_dataset.items():
        days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(DAYS)]
        expected = [raw / sd.extract_key(dataset_id, d) for d in days]
        assert paths == expected


def test_written_paths_are_returned_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger=sd.__name__)
    paths = sd.generate_extracts(tmp_path, days=2, rows_per_file=50, start_date=dt.date(2027, 1, 31),
                                 datasets=["orders"])
    assert paths == [tmp_path / "erp/orders/orders_2027-01-31.csv.gz",
                     tmp_path / "erp/orders/orders_2027-02-01.csv.gz"]
    assert len([r for r in caplog.records if r.name == sd.__name__]) == 2
    with pytest.raises(ValueError, match="unknown dataset"):
        sd.generate_extracts(tmp_path, datasets=["invoices"])


def test_source_column_names(raw: Path, contracts: dict[str, Contract]) -> None:
    for dataset_id, names in (("orders", sd.ORDERS_COLUMNS), ("customers", sd.CUSTOMERS_KEYS),
                              ("meter_readings", sd.METER_READINGS_COLUMNS)):
        assert list(names) == [c.source_name for c in contracts[dataset_id].columns]
    orders = raw / sd.extract_key("orders", dt.date(2026, 11, 1))
    assert _csv_rows(orders)[0] == [c.source_name for c in contracts["orders"].columns]
    customers = raw / sd.extract_key("customers", dt.date(2026, 11, 2))
    records = _parsed(_json_lines(customers))
    source_keys = [c.source_name for c in contracts["customers"].columns]
    assert records and all(list(r) == source_keys for r in records)


def test_contract_formats_and_date_patterns(raw: Path, contracts: dict[str, Contract]) -> None:
    assert contracts["orders"].format.type == "csv" and contracts["orders"].format.compression == "gzip"
    assert contracts["customers"].format.type == "jsonl"
    rows = _csv_rows(raw / sd.extract_key("orders", dt.date(2026, 11, 2)))[1:]
    good = [r for r in rows if len(r) == 8 and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[2])]
    assert len(good) >= len(rows) * 0.99
    assert {r[3] for r in rows if len(r) == 8} == {"2026-11-02"}  # ORDER_DATE is the file's day
    assert all(re.fullmatch(r"-?\d+\.\d\d", r[5]) for r in good if r[5][-1].isdigit())
    records = _parsed(_json_lines(raw / sd.extract_key("customers", dt.date(2026, 11, 1))))
    signup_ok = [r for r in records if re.fullmatch(r"\d\d/\d\d/\d{4}", str(r["signupDate"]))]
    assert len(signup_ok) >= len(records) * 0.99
    for r in signup_ok:
        dt.datetime.strptime(str(r["signupDate"]), "%d/%m/%Y")
    for r in records:
        dt.datetime.strptime(str(r["updatedAt"]), "%Y-%m-%dT%H:%M:%S")


def test_parquet_schema(raw: Path) -> None:
    schema = pq.read_schema(raw / sd.extract_key("meter_readings", dt.date(2026, 11, 1)))
    assert schema.names == list(sd.METER_READINGS_COLUMNS)
    assert schema.field("meter_id").type == pa.string()
    ts = schema.field("reading_ts").type
    assert pa.types.is_timestamp(ts) and ts.unit == "us"
    assert schema.field("reading_date").type == pa.date32()
    assert schema.field("kwh").type == pa.decimal128(10, 3)
    assert schema.field("voltage").type == pa.float64()
    assert schema.field("status").type == pa.string()


# -- row counts and parsing ---------------------------------------------------------------------


def test_orders_parse_with_pyarrow(raw: Path) -> None:
    path = raw / sd.extract_key("orders", dt.date(2026, 11, 1))
    skipped: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        skipped.append(row.text or "")
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(gzip.decompress(path.read_bytes())),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in sd.ORDERS_COLUMNS}),
    )
    short = sd.defect_count(ROWS, sd.ORDERS_DEFECT_RATES["short_line"])
    assert len(skipped) == short
    assert table.num_rows == ROWS - short


def test_customers_parse_with_duckdb(raw: Path) -> None:
    path = raw / sd.extract_key("customers", dt.date(2026, 11, 1))
    count = _one(
        f"SELECT count(*) FROM read_json('{path}', format = 'newline_delimited', "
        "ignore_errors = true, columns = {customer_id: 'BIGINT', name: 'VARCHAR'}) "
        "WHERE name IS NOT NULL"
    )
    broken = sd.defect_count(ROWS, sd.CUSTOMERS_DEFECT_RATES["broken_json"])
    assert count == (ROWS - broken,)
    assert len(_json_lines(path)) == ROWS


def test_meter_readings_row_count(raw: Path) -> None:
    path = raw / sd.extract_key("meter_readings", dt.date(2026, 11, 3))
    regular = sd.meters_for(ROWS) * sd.SLOTS_PER_DAY
    dups = sd.defect_count(regular, sd.METER_READINGS_DUPLICATE_RATE)
    assert pq.read_metadata(path).num_rows == regular + dups
    rows = _one(
        f"SELECT count(*), count(DISTINCT (meter_id, reading_ts)), min(reading_date), max(reading_date) "
        f"FROM '{path}'"
    )
    assert rows == (regular + dups, regular, dt.date(2026, 11, 3), dt.date(2026, 11, 3))


# -- injected defects ----------------------------------------------------------------------------


def test_order_defects(raw: Path, contracts: dict[str, Contract]) -> None:
    allowed = set(next(r for r in contracts["orders"].rules if r.name == "status_known").values)
    assert allowed == set(sd.ORDER_STATUSES)
    rows = _csv_rows(raw / sd.extract_key("orders", dt.date(2026, 11, 1)))[1:]
    assert len(rows) == ROWS
    rates = sd.ORDERS_DEFECT_RATES
    full = [r for r in rows if len(r) == 8]
    assert len(rows) - len(full) == sd.defect_count(ROWS, rates["short_line"])
    assert sum(r[4] not in allowed for r in full) == sd.defect_count(ROWS, rates["unknown_status"])
    assert sum(r[0] == "" for r in full) == sd.defect_count(ROWS, rates["missing_order_id"])
    assert sum(r[6] == "XXX" for r in full) == sd.defect_count(ROWS, rates["unknown_currency"])
    assert sum(r[5].startswith("-") for r in full) == sd.defect_count(ROWS, rates["negative_amount"])
    amounts = [r[5] for r in full if not re.fullmatch(r"-?\d+\.\d\d", r[5])]
    assert len(amounts) == sd.defect_count(ROWS, rates["non_numeric_amount"])
    bad_ts = [r[2] for r in full if not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[2])]
    assert len(bad_ts) == sd.defect_count(ROWS, rates["bad_timestamp"])
    assert {r[6] for r in full} <= {"EUR", "USD", "GBP", "XXX"}


def test_order_resends_have_later_updated_at(raw: Path) -> None:
    seen: dict[str, list[list[str]]] = defaultdict(list)
    for path in sorted(raw.glob("erp/orders/*.csv.gz")):
        for r in _csv_rows(path)[1:]:
            if r[0]:
                seen[r[0]].append(r)
    dupes = {k: v for k, v in seen.items() if len(v) > 1}
    assert len(dupes) == DAYS * sd.defect_count(ROWS, sd.ORDERS_RESEND_RATE)
    for versions in dupes.values():
        assert len(versions) == 2
        first, second = sorted(versions, key=lambda r: r[7])
        assert first[7] < second[7]  # one unambiguous latest version
        assert first[3] == second[3]  # same ORDER_DATE, same partition
        assert (first[4], second[4]) in {("NEW", "PAID"), ("PAID", "SHIPPED"), ("SHIPPED", "SHIPPED"),
                                         ("CANCELLED", "CANCELLED")}


def test_customer_defects(raw: Path, contracts: dict[str, Contract]) -> None:
    rules = {r.name: r for r in contracts["customers"].rules}
    lines = _json_lines(raw / sd.extract_key("customers", dt.date(2026, 11, 2)))
    assert len(lines) == ROWS
    records = _parsed(lines)
    rates = sd.CUSTOMERS_DEFECT_RATES
    broken = [line for line in lines if line not in {json.dumps(r, ensure_ascii=False,
                                                                separators=(",", ":")) for r in records}]
    assert len(broken) == sd.defect_count(ROWS, rates["broken_json"])
    assert all(re.fullmatch(r'\{"customer_id":\d+,"na', b) for b in broken)
    email = re.compile(str(rules["email_format"].pattern))
    assert sum(not email.match(str(r["email"])) for r in records) == sd.defect_count(
        ROWS, rates["invalid_email"])
    countries = set(rules["country_iso2"].values)
    assert set(sd.COUNTRIES) == countries
    assert sum(r["country"] not in countries for r in records) == sd.defect_count(
        ROWS, rates["unknown_country"])
    assert sum(int(r["loyaltyPoints"]) < 0 for r in records) == sd.defect_count(
        ROWS, rates["negative_points"])
    bad_dates = [r for r in records if not re.fullmatch(r"\d\d/\d\d/\d{4}", str(r["signupDate"]))]
    assert len(bad_dates) == sd.defect_count(ROWS, rates["bad_signup_date"])


def test_customers_resent_later_with_later_updated_at(raw: Path) -> None:
    versions: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for day in range(DAYS):
        path = raw / sd.extract_key("customers", dt.date(2026, 11, 1) + dt.timedelta(days=day))
        for r in _parsed(_json_lines(path)):
            versions[int(r["customer_id"])].append(
                (path.name, str(r["updatedAt"]), str(r["name"])))
    resent = {cid: v for cid, v in versions.items() if len(v) > 1}
    extra_versions = sum(len(v) - 1 for v in resent.values())
    expected = (DAYS - 1) * sd.defect_count(ROWS, sd.CUSTOMERS_RESEND_RATE)
    # a re-sent customer whose first version was a broken line shows up once less
    broken = DAYS * sd.defect_count(ROWS, sd.CUSTOMERS_DEFECT_RATES["broken_json"])
    assert expected - broken <= extra_versions <= expected
    assert extra_versions > 0
    for v in resent.values():
        assert len({name for _, _, name in v}) == 1  # the same customer
        assert len({f for f, _, _ in v}) == len(v)  # re-sent on another day, not within a file
        ordered = sorted(v)
        assert [u for _, u, _ in ordered] == sorted(u for _, u, _ in ordered)
        assert ordered[-1][1] > ordered[0][1]


def test_meter_reading_defects(raw: Path, contracts: dict[str, Contract]) -> None:
    rules = {r.name: r for r in contracts["meter_readings"].rules}
    path = raw / sd.extract_key("meter_readings", dt.date(2026, 11, 2))
    regular = sd.meters_for(ROWS) * sd.SLOTS_PER_DAY
    rates = sd.METER_READINGS_DEFECT_RATES
    kwh_max, v_min, v_max = rules["kwh_plausible"].max, rules["voltage_nominal"].min, rules["voltage_nominal"].max
    statuses = ", ".join(f"'{s}'" for s in rules["status_known"].values)
    counts = _one(
        f"SELECT count(*) FILTER (WHERE kwh > {kwh_max} OR kwh < 0), "
        f"count(*) FILTER (WHERE status NOT IN ({statuses})), "
        f"count(*) FILTER (WHERE voltage < {v_min} OR voltage > {v_max}) FROM '{path}'"
    )
    assert counts == (
        sd.defect_count(regular, rates["kwh_out_of_range"]),
        sd.defect_count(regular, rates["unknown_status"]),
        sd.defect_count(regular, rates["voltage_out_of_range"]),
    )
    assert _one(f"SELECT max(kwh) FROM '{path}'") == (pytest.approx(9999.0),)


def test_defect_rates_are_realistic() -> None:
    for rates in (sd.ORDERS_DEFECT_RATES, sd.CUSTOMERS_DEFECT_RATES, sd.METER_READINGS_DEFECT_RATES):
        assert 0.005 <= sum(rates.values()) <= 0.01
    assert set(sd.ORDERS_DEFECT_RATES) >= sd.ORDERS_WARN_ONLY
    assert set(sd.CUSTOMERS_DEFECT_RATES) >= sd.CUSTOMERS_WARN_ONLY
    assert set(sd.METER_READINGS_DEFECT_RATES) >= sd.METER_READINGS_WARN_ONLY
    assert sd.defect_count(sd.MIN_ROWS_FOR_DEFECTS - 1, 0.5) == 0
    assert sd.defect_count(2000, 0.001) == 2
    assert sd.defect_count(200, 0.001) == 1


def test_small_files_are_clean(tmp_path: Path) -> None:
    paths = sd.generate_extracts(tmp_path, days=2, rows_per_file=20, datasets=["orders", "customers"])
    orders = [p for p in paths if p.name.endswith(".csv.gz")]
    customers = [p for p in paths if p.name.endswith(".jsonl.gz")]
    assert (len(orders), len(customers)) == (2, 2)
    for path in orders:
        rows = _csv_rows(path)[1:]
        assert len(rows) == 20 and all(len(r) == 8 and r[0] and r[6] != "XXX" for r in rows)
    for path in customers:
        assert len(_parsed(_json_lines(path))) == 20
