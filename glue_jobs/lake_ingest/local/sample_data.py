"""Deterministic, realistically messy daily extracts standing in for the on-premise sources."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import random
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Layout of the extracts; mirrors glue_jobs/contracts/*.yaml (the tests check they agree).
# --------------------------------------------------------------------------------------------

#: File key (relative to the raw root) per dataset; ``{day}`` is the ISO date of the extract.
FILE_KEYS: Mapping[str, str] = MappingProxyType({
    "orders": "erp/orders/orders_{day}.csv.gz",
    "customers": "crm/customers/customers_{day}.jsonl.gz",
    "meter_readings": "plant/meter_readings/readings_{day}.parquet",
})
DATASETS: tuple[str, ...] = tuple(FILE_KEYS)

#: Source column names, in contract order.
ORDERS_COLUMNS = (
    "ORDER_ID", "CUSTOMER_ID", "ORDER_TS", "ORDER_DATE", "STATUS", "AMOUNT", "CURRENCY", "UPDATED_AT",
)
CUSTOMERS_KEYS = (
    "customer_id", "name", "email", "country", "signupDate", "loyaltyPoints", "active", "updatedAt",
)
METER_READINGS_COLUMNS = ("meter_id", "reading_ts", "reading_date", "kwh", "voltage", "status")

ORDER_STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")
CURRENCIES = ("EUR", "USD", "GBP")
COUNTRIES = ("DE", "FR", "GB", "IE", "NL", "ES", "IT", "US")
METER_STATUSES = ("OK", "ESTIMATED", "ERROR")
SLOTS_PER_DAY = 96  # quarter-hourly readings

# --------------------------------------------------------------------------------------------
# Injected defects. Every rate is a fraction of the rows of one file; see defect_count().
# Each defective row carries exactly one defect; re-sent rows are always otherwise valid.
# --------------------------------------------------------------------------------------------

#: Files with fewer data rows than this are written without any defects or re-sent rows.
MIN_ROWS_FOR_DEFECTS = 100

ORDERS_DEFECT_RATES: Mapping[str, float] = MappingProxyType({
    "non_numeric_amount": 0.001,  # AMOUNT "12,50x"
    "unknown_status": 0.001,  # STATUS "SHIPPD"
    "missing_order_id": 0.001,  # ORDER_ID ""
    "negative_amount": 0.001,  # AMOUNT < 0
    "bad_timestamp": 0.001,  # ORDER_TS "01.11.2026 10:15:00"
    "short_line": 0.001,  # a line with only the first three fields
    "unknown_currency": 0.001,  # CURRENCY "XXX" (warn only)
})
ORDERS_WARN_ONLY = frozenset({"unknown_currency"})
#: Orders re-sent in the same file with an advanced status and a later UPDATED_AT.
ORDERS_RESEND_RATE = 0.005

CUSTOMERS_DEFECT_RATES: Mapping[str, float] = MappingProxyType({
    "invalid_email": 0.0015,  # e.g. "anna.schmidt@example" (no TLD)
    "unknown_country": 0.0015,  # "UK", "Germany", ...
    "broken_json": 0.0015,  # a truncated line such as {"customer_id":12,"na
    "bad_signup_date": 0.0015,  # ISO date instead of dd/MM/yyyy
    "negative_points": 0.0015,  # loyaltyPoints < 0 (warn only)
})
CUSTOMERS_WARN_ONLY = frozenset({"negative_points"})
#: Customers from earlier days re-sent (from the second day on) with a later updatedAt.
CUSTOMERS_RESEND_RATE = 0.01

METER_READINGS_DEFECT_RATES: Mapping[str, float] = MappingProxyType({
    "kwh_out_of_range": 0.002,  # kwh 9999.000
    "unknown_status": 0.002,  # status "BROKEN"
    "voltage_out_of_range": 0.003,  # voltage outside 207..253 V (warn only)
})
METER_READINGS_WARN_ONLY = frozenset({"voltage_out_of_range"})
#: Extra rows repeating an existing (meter_id, reading_ts) with a re-estimated kwh.
METER_READINGS_DUPLICATE_RATE = 0.002


def defect_count(rows: int, rate: float) -> int:
    """Return how many rows of a file with ``rows`` rows get a defect injected at ``rate``.

    Parameters
    ----------
    rows
        Number of data rows of the file (for meter readings: the regular readings).
    rate
        One of the rates defined in this module.

    Returns
    -------
    int
        ``0`` below :data:`MIN_ROWS_FOR_DEFECTS`, else ``rate * rows`` rounded, at least 1.
    """
    if rows < MIN_ROWS_FOR_DEFECTS or rate <= 0:
        return 0
    return max(1, round(rows * rate))


def meters_for(rows_per_file: int) -> int:
    """Return the number of meters whose quarter-hourly readings make about ``rows_per_file`` rows."""
    return max(1, round(rows_per_file / SLOTS_PER_DAY))


def extract_key(dataset_id: str, day: date) -> str:
    """Return the raw-zone key (``<source prefix><file name>``) of one dataset's daily extract."""
    return FILE_KEYS[dataset_id].format(day=day.isoformat())


def generate_extracts(
    raw_root: str | Path,
    *,
    days: int = 5,
    rows_per_file: int = 2000,
    seed: int = 7,
    start_date: date = date(2026, 11, 1),
    datasets: Iterable[str] | None = None,
) -> list[Path]:
    """Write daily source extracts for every dataset under a local raw-zone directory.

    Files land at ``<raw_root>/<source prefix><file name>``, e.g.
    ``<raw_root>/erp/orders/orders_2026-11-01.csv.gz``. The output depends only on the
    arguments: the same arguments give byte-identical files.

    Parameters
    ----------
    raw_root
        Local stand-in for the raw S3 bucket; created when missing.
    days
        Number of consecutive daily extracts per dataset.
    rows_per_file
        Data rows per orders / customers file; meter readings get
        ``meters_for(rows_per_file) * 96`` regular rows plus a few duplicates.
    seed
        Seed of the pseudo-random generators (one per dataset and day).
    start_date
        Day of the first extract.
    datasets
        Restrict the output to these dataset ids (default: all of :data:`DATASETS`).

    Returns
    -------
    list[Path]
        The files written, grouped by dataset, in day order.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1, got {rows_per_file}")
    wanted = DATASETS if datasets is None else tuple(datasets)
    unknown = sorted(set(wanted) - set(DATASETS))
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; expected some of {list(DATASETS)}")
    root = Path(raw_root)
    writers: dict[str, Callable[[Path, random.Random, int, date], int]] = {
        "orders": lambda p, r, i, d: _write_orders(p, r, i, d, rows_per_file, seed),
        "customers": lambda p, r, i, d: _write_customers(p, r, i, d, rows_per_file, seed),
        "meter_readings": lambda p, r, i, d: _write_meter_readings(p, r, d, rows_per_file, seed),
    }
    written: list[Path] = []
    for dataset_id in DATASETS:
        if dataset_id not in wanted:
            continue
        for index in range(days):
            day = start_date + timedelta(days=index)
            path = root / extract_key(dataset_id, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            rng = random.Random(f"{seed}/{dataset_id}/{day.isoformat()}")
            fresh = path.with_name(f".{path.name}.new")
            rows = writers[dataset_id](fresh, rng, index, day)
            _settle(fresh, path)
            logger.info("wrote %s (%d rows, %.1f KiB)", path, rows, path.stat().st_size / 1024)
            written.append(path)
    return written


def _settle(fresh: Path, path: Path) -> None:
    """Move a generated file into place. The raw zone is the system of record: an extract that is
    already there is kept as it is when the new one has the same bytes, and never replaced by
    different ones (other knobs or seed): the ledger would take it for a new delivery and the
    lake would hold both versions of its rows."""
    if not path.exists():
        fresh.replace(path)
        return
    same = path.stat().st_size == fresh.stat().st_size and path.read_bytes() == fresh.read_bytes()
    fresh.unlink()
    if not same:
        raise ExtractConflict(path)


class ExtractConflict(ValueError):
    """A raw extract exists with other bytes than the ones these arguments generate."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} exists with other content than these --days/--rows-per-file/--seed generate; "
                         "the raw zone is never overwritten: use the knobs it was made with, or start over "
                         "with --fresh (make demo-fresh)")
        self.path = path


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


_FIRST_NAMES = (
    "Anna", "Lukas", "Marie", "Jonas", "Sophie", "Léa", "Hugo", "Chloé", "Oliver", "Amelia",
    "Jack", "Isla", "Seán", "Aoife", "Daan", "Emma", "Lucía", "Mateo", "Giulia", "Lorenzo",
    "Liam", "Olivia", "Noah", "Zoë", "Jürgen", "Björn", "Inés", "Niamh", "Sven", "Fatima",
)
_LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Martin", "Bernard", "Dubois",
    "Smith", "Jones", "Taylor", "Brown", "Murphy", "O'Brien", "Kelly", "de Jong", "Jansen",
    "García", "Fernández", "López", "Rossi", "Russo", "Bianchi", "Johnson", "Williams",
    "Nguyen", "Kowalski", "Novák", "Öztürk", "Andersen",
)
_FIRST_ASCII = tuple(_ascii(n) for n in _FIRST_NAMES)
_LAST_ASCII = tuple(_ascii(n) for n in _LAST_NAMES)
_MAIL_DOMAINS = ("example.com", "mail.example.org", "example.net", "corp.example.de")
#: Country shares of the customer base, in percent.
_COUNTRY_WEIGHTS = {"DE": 30, "FR": 15, "GB": 15, "NL": 10, "ES": 8, "IT": 8, "IE": 4, "US": 10}
_COUNTRY_TABLE = tuple(c for c, w in _COUNTRY_WEIGHTS.items() for _ in range(w))
_ORDER_STATUS_CUM = (25, 60, 90, 100)
_CURRENCY_CUM = (70, 88, 100)
_METER_STATUS_CUM = (96, 99, 100)
_STATUS_NEXT = {"NEW": "PAID", "PAID": "SHIPPED", "SHIPPED": "SHIPPED", "CANCELLED": "CANCELLED"}


def _mix(*parts: int) -> int:
    """A small deterministic 64-bit hash (splitmix-style) of some integers."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (part & _MASK64)) & _MASK64
        h = (h * 0xBF58476D1CE4E5B9) & _MASK64
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 29
    return h


def _assign_defects(
    rng: random.Random, candidates: list[int], rates: Mapping[str, float], rows: int
) -> dict[int, str]:
    """Pick distinct row indices from ``candidates`` for every defect kind."""
    counts = {kind: defect_count(rows, rate) for kind, rate in rates.items()}
    picked = rng.sample(candidates, min(len(candidates), sum(counts.values())))
    out: dict[int, str] = {}
    it = iter(picked)
    for kind, count in counts.items():
        for _ in range(count):
            index = next(it, None)
            if index is not None:
                out[index] = kind
    return out


def _dd_mm_yyyy(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _gzip_bytes(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


# --------------------------------------------------------------------------------------------
# orders: gzip CSV from the ERP
# --------------------------------------------------------------------------------------------


def _customers_before(day_index: int, rows_per_file: int) -> int:
    """Number of distinct customer ids created by the extracts of the days before ``day_index``."""
    resent = defect_count(rows_per_file, CUSTOMERS_RESEND_RATE)
    if day_index <= 0:
        return 0
    return rows_per_file + (day_index - 1) * (rows_per_file - resent)


def _write_orders(
    path: Path, rng: random.Random, day_index: int, day: date, rows: int, seed: int
) -> int:
    resend = defect_count(rows, ORDERS_RESEND_RATE)
    base_rows = rows - resend
    known_customers = max(1, _customers_before(day_index + 1, rows))
    midnight = datetime(day.year, day.month, day.day)
    first_id = 1_000_000 + day_index * rows
    day_text = day.isoformat()
    records: list[list[str]] = []
    updated_at: list[datetime] = []
    for k in range(base_rows):
        ts = midnight + timedelta(seconds=rng.randrange(6 * 3600, 23 * 3600))
        updated = ts + timedelta(seconds=rng.randrange(0, 1800))
        status = rng.choices(ORDER_STATUSES, cum_weights=_ORDER_STATUS_CUM)[0]
        amount = max(0.5, rng.lognormvariate(4.0, 0.9))
        currency = rng.choices(CURRENCIES, cum_weights=_CURRENCY_CUM)[0]
        records.append([
            str(first_id + k), str(rng.randint(1, known_customers)), ts.isoformat(" "),
            day_text, status, f"{amount:.2f}", currency, updated.isoformat(" "),
        ])
        updated_at.append(updated)

    # Re-sent versions of some orders: status moves on, UPDATED_AT is later.
    resent_rows = rng.sample(range(base_rows), min(resend, base_rows))
    clean = sorted(set(range(base_rows)) - set(resent_rows))
    defects = _assign_defects(rng, clean, ORDERS_DEFECT_RATES, rows)
    updates: list[list[str]] = []
    for k in resent_rows:
        later = updated_at[k] + timedelta(seconds=rng.randrange(3600, 6 * 3600))
        rec = list(records[k])
        rec[4] = _STATUS_NEXT[rec[4]]
        rec[7] = later.isoformat(" ")
        updates.append(rec)

    for k, kind in defects.items():
        rec = records[k]
        if kind == "non_numeric_amount":
            rec[5] = rng.choice(("12,50x", "n/a", "1.234,56"))
        elif kind == "unknown_status":
            rec[4] = rng.choice(("SHIPPD", "PAYED", "?"))
        elif kind == "missing_order_id":
            rec[0] = ""
        elif kind == "negative_amount":
            rec[5] = f"-{rec[5]}"
        elif kind == "bad_timestamp":
            clock = rec[2][11:]
            rec[2] = rng.choice((f"{day:%d.%m.%Y} {clock}", f"{day_text}T{clock}Z", "n/a"))
        elif kind == "short_line":
            records[k] = rec[:3]
        elif kind == "unknown_currency":
            rec[6] = "XXX"
    for rec in updates:
        records.insert(rng.randrange(len(records) + 1), rec)

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=",", quotechar='"', doublequote=True, lineterminator="\n")
    writer.writerow(ORDERS_COLUMNS)
    writer.writerows(records)
    path.write_bytes(_gzip_bytes(buf.getvalue()))
    return len(records)


# --------------------------------------------------------------------------------------------
# customers: gzip JSON Lines from the CRM
# --------------------------------------------------------------------------------------------


def _customer(seed: int, customer_id: int, day: date) -> dict[str, Any]:
    """The stable attributes of one customer, derived from its id alone."""
    h = _mix(seed, customer_id)
    i_first, i_last = h % len(_FIRST_NAMES), (h >> 8) % len(_LAST_NAMES)
    domain = _MAIL_DOMAINS[(h >> 16) % len(_MAIL_DOMAINS)]
    country = _COUNTRY_TABLE[(h >> 24) % len(_COUNTRY_TABLE)]
    signup = date(2019, 1, 1) + timedelta(days=(h >> 32) % 2400)
    signup = min(signup, day)
    return {
        "customer_id": customer_id,
        "name": f"{_FIRST_NAMES[i_first]} {_LAST_NAMES[i_last]}",
        "email": f"{_FIRST_ASCII[i_first]}.{_LAST_ASCII[i_last]}{customer_id % 100}@{domain}",
        "country": country,
        "signupDate": _dd_mm_yyyy(signup),
    }


def _write_customers(
    path: Path, rng: random.Random, day_index: int, day: date, rows: int, seed: int
) -> int:
    midnight = datetime(day.year, day.month, day.day)
    existing = _customers_before(day_index, rows)
    resend = min(existing, defect_count(rows, CUSTOMERS_RESEND_RATE)) if day_index else 0
    new_ids = range(existing + 1, existing + 1 + rows - resend)
    resent_ids = sorted(rng.sample(range(1, existing + 1), resend)) if resend else []
    ids = list(new_ids) + resent_ids
    rng.shuffle(ids)
    resent_set = set(resent_ids)
    clean = [k for k, cid in enumerate(ids) if cid not in resent_set]
    defects = _assign_defects(rng, clean, CUSTOMERS_DEFECT_RATES, rows)

    lines: list[str] = []
    for k, cid in enumerate(ids):
        rec = _customer(seed, cid, day)
        rec["loyaltyPoints"] = rng.randint(0, 5000) if rng.random() < 0.85 else 0
        rec["active"] = rng.random() < 0.9
        updated = midnight + timedelta(seconds=rng.randrange(0, 24 * 3600))
        rec["updatedAt"] = updated.isoformat()  # yyyy-MM-ddTHH:mm:ss (whole seconds)
        kind = defects.get(k)
        if kind == "invalid_email":
            local = rec["email"].split("@", 1)[0]
            rec["email"] = rng.choice(
                (f"{local}@example", f"{local}(at)example.com", f"{local}@@example.com")
            )
        elif kind == "unknown_country":
            rec["country"] = rng.choice(("UK", "Germany", "XX"))
        elif kind == "bad_signup_date":
            day_part, month_part, year_part = rec["signupDate"].split("/")
            rec["signupDate"] = f"{year_part}-{month_part}-{day_part}"
        elif kind == "negative_points":
            rec["loyaltyPoints"] = -rng.randint(1, 500)
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
        if kind == "broken_json":
            line = line[: line.index(',"name"') + 4]  # e.g. {"customer_id":12,"na
        lines.append(line)
    path.write_bytes(_gzip_bytes("".join(f"{line}\n" for line in lines)))
    return len(lines)


# --------------------------------------------------------------------------------------------
# meter_readings: Parquet from the plant historian
# --------------------------------------------------------------------------------------------


def _write_meter_readings(
    path: Path, rng: random.Random, day: date, rows_per_file: int, seed: int
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    meters = meters_for(rows_per_file)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    slot_ts = [midnight + timedelta(minutes=15 * s) for s in range(SLOTS_PER_DAY)]
    # Daily load profile: low at night, peaks in the morning and the evening.
    profile = [
        0.35 + 0.45 * max(0.0, 1 - abs(s - 30) / 12) + 0.6 * max(0.0, 1 - abs(s - 76) / 14)
        for s in range(SLOTS_PER_DAY)
    ]
    meter_ids: list[str] = []
    ts_col: list[datetime] = []
    kwh: list[float] = []
    voltage: list[float | None] = []
    status: list[str] = []
    for m in range(meters):
        meter_id = f"MTR-{m + 1:06d}"
        base = 0.5 + (_mix(seed, m) % 4000) / 1000  # kWh per quarter hour at the peak
        nominal = 228.0 + (_mix(seed, m, 1) % 50) / 10
        for s in range(SLOTS_PER_DAY):
            state = rng.choices(METER_STATUSES, cum_weights=_METER_STATUS_CUM)[0]
            meter_ids.append(meter_id)
            ts_col.append(slot_ts[s])
            kwh.append(0.0 if state == "ERROR" else base * profile[s] * rng.uniform(0.85, 1.15))
            voltage.append(None if state == "ERROR" else round(rng.gauss(nominal, 1.5), 1))
            status.append(state)

    regular = len(meter_ids)
    candidates = [k for k in range(regular) if status[k] == "OK"]
    defects = _assign_defects(rng, candidates, METER_READINGS_DEFECT_RATES, regular)
    for k, kind in defects.items():
        if kind == "kwh_out_of_range":
            kwh[k] = 9999.0
        elif kind == "unknown_status":
            status[k] = "BROKEN"
        elif kind == "voltage_out_of_range":
            low, high = rng.choice(((190.0, 205.0), (255.0, 265.0)))
            voltage[k] = round(rng.uniform(low, high), 1)
    # Late corrections re-sent by the historian: same (meter_id, reading_ts), new kwh.
    clean = [k for k in candidates if k not in defects]
    duplicates = min(len(clean), defect_count(regular, METER_READINGS_DUPLICATE_RATE))
    for k in sorted(rng.sample(clean, duplicates)):
        meter_ids.append(meter_ids[k])
        ts_col.append(ts_col[k])
        kwh.append(kwh[k] * rng.uniform(0.9, 1.1))
        voltage.append(voltage[k])
        status.append("ESTIMATED")

    schema = pa.schema([
        pa.field("meter_id", pa.string(), nullable=False),
        pa.field("reading_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("reading_date", pa.date32(), nullable=False),
        pa.field("kwh", pa.decimal128(10, 3), nullable=False),
        pa.field("voltage", pa.float64()),
        pa.field("status", pa.string(), nullable=False),
    ])
    table = pa.table(
        [
            pa.array(meter_ids, pa.string()),
            pa.array(ts_col, pa.timestamp("us", tz="UTC")),
            pa.array([day] * len(meter_ids), pa.date32()),
            pa.array([Decimal(f"{v:.3f}") for v in kwh], pa.decimal128(10, 3)),
            pa.array(voltage, pa.float64()),
            pa.array(status, pa.string()),
        ],
        schema=schema,
    )
    pq.write_table(table, path, compression="snappy")
    return table.num_rows
