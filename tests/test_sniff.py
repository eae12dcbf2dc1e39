"""Whole-file checks: what makes a raw file unreadable, empty or acceptable."""

from __future__ import annotations

import copy
import gzip

import pytest
import yaml

from lake_ingest import Contract
from lake_ingest._sniff import (
    EMPTY,
    FAILED,
    OK,
    check_columns,
    parquet_footer,
    parquet_footer_length,
    sniff,
    sniff_parquet,
)

HEADER = "ORDER_ID,CUSTOMER_ID,ORDER_TS,ORDER_DATE,STATUS,AMOUNT,CURRENCY,UPDATED_AT\n"
ROW = "1,10,2026-11-01 10:00:00,2026-11-01,NEW,12.50,EUR,2026-11-01 10:00:00\n"


def load(contracts_dir, name, **changes):
    with open(contracts_dir / f"{name}.yaml") as fh:
        doc = yaml.safe_load(fh)
    doc = copy.deepcopy(doc)
    for key, value in changes.items():
        doc[key] = value
    return Contract.from_dict(doc)


@pytest.fixture
def orders(contracts_dir):
    return load(contracts_dir, "orders")


def gz(text: str, encoding: str = "utf-8") -> bytes:
    return gzip.compress(text.encode(encoding), mtime=0)


def test_good_csv(orders):
    data = gz(HEADER + ROW)
    verdict = sniff(data, len(data), orders)
    assert verdict.status == OK
    assert verdict.columns[0] == "ORDER_ID" and len(verdict.columns) == 8


def test_reordered_header_is_fine(orders):
    cols = HEADER.strip().split(",")
    data = gz(",".join(reversed(cols)) + "\n" + ROW)
    verdict = sniff(data, len(data), orders)
    assert verdict.status == OK and verdict.columns == tuple(reversed(cols))


@pytest.mark.parametrize(("payload", "reason"), [
    (gz(ROW + ROW), "none of the contract's columns found"),                      # missing header
    (gz(HEADER.replace(",", ";") + ROW.replace(",", ";")), "none of the contract's columns found"),  # delimiter
    (b"\x00\x01\x02 garbage", "not gzip-compressed"),
    (b"\x1f\x8b\x08\x00garbage-after-magic", "corrupt gzip stream"),
    (gz(HEADER.replace("CURRENCY", "CURRENCY,EXTRA") + ROW), "unexpected columns EXTRA (schema_evolution: strict)"),
    (gz(HEADER.replace(",CURRENCY", "") + ROW), "missing columns CURRENCY"),
    (gz(HEADER.replace("STATUS", "AMOUNT") + ROW), "duplicate columns in the file: AMOUNT"),
])
def test_unreadable_files_fail_with_reason(orders, payload, reason):
    verdict = sniff(payload, len(payload), orders)
    assert verdict.status == FAILED
    assert reason in verdict.reason


def test_bad_encoding(orders):
    data = gz(HEADER + "1,10,2026-11-01 10:00:00,2026-11-01,NEW,12.50,EUR,2026-11-01 10:00:00,Müller\n", "latin-1")
    verdict = sniff(data, len(data), orders)
    assert verdict.status == FAILED and "not valid UTF-8 text" in verdict.reason


def test_latin1_contract_accepts_latin1(contracts_dir):
    contract = load(contracts_dir, "orders", format={"type": "csv", "compression": "none",
                                                     "options": {"encoding": "ISO-8859-1", "delimiter": ";"}})
    text = HEADER.replace(",", ";") + ROW.replace(",", ";").replace("EUR", "Müller")
    data = text.encode("latin-1")
    assert sniff(data, len(data), contract).status == OK


@pytest.mark.parametrize("payload", [b"", gz(""), gz(HEADER), gz(HEADER + "\n\n")])
def test_empty_files(orders, payload):
    assert sniff(payload, len(payload), orders).status == EMPTY


def test_truncated_head_is_not_called_empty(orders):
    data = gz(HEADER + ROW * 50_000)
    head = data[:1000]
    assert sniff(head, len(data), orders).status == OK


def test_truncated_small_gzip_fails(orders):
    """A file that fits in the sniffed head is checked to the end of its gzip stream (an upload
    cut short); a larger one is checked by the job when Spark reads it (see test_job)."""
    data = gz(HEADER + ROW * 20)
    cut = data[: len(data) - 12]
    verdict = sniff(cut, len(cut), orders)
    assert verdict.status == FAILED and "truncated gzip stream" in verdict.reason
    assert sniff(data, len(data), orders).status == OK


def test_gzip_members_after_the_first_are_read(orders):
    """``cat header.gz rows.gz`` is one valid gzip file to Hadoop: a first member that holds only
    the header is not an empty file, and a cut in the last member is still found."""
    data = gz(HEADER) + gz(ROW * 3)
    assert sniff(data, len(data), orders).status == OK
    assert sniff(gz("") + data, len(data) + len(gz("")), orders).status == OK
    cut = data[:-12]
    assert "truncated gzip stream" in sniff(cut, len(cut), orders).reason
    header_only = gz(HEADER) + gz("")
    assert sniff(header_only, len(header_only), orders).status == EMPTY


def test_leading_blank_and_comment_lines_are_skipped_as_spark_skips_them(contracts_dir, orders):
    """Spark takes the first line that is neither blank nor a comment as the header."""
    data = gz("\n  \n" + HEADER + ROW)
    assert sniff(data, len(data), orders).status == OK
    with open(contracts_dir / "orders.yaml") as fh:
        doc = yaml.safe_load(fh)
    doc["format"]["options"]["comment"] = "#"
    commented = Contract.from_dict(doc)
    data = gz("# export of 2026-11-01\n" + HEADER + "# a note between rows\n" + ROW)
    assert sniff(data, len(data), commented).status == OK
    assert sniff(data, len(data), orders).status == FAILED  # without the option the comment is the header
    header_only = gz("# export of 2026-11-01\n" + HEADER + "# nothing today\n")
    assert sniff(header_only, len(header_only), commented).status == EMPTY


def test_a_line_that_java_does_not_trim_is_the_header(orders):
    """Spark skips the lines that Java's ``trim`` empties; a no-break space is not among them, so
    a line holding one is the header (and the real header would be read as a row)."""
    data = gz("\u00a0\n" + HEADER + ROW)
    verdict = sniff(data, len(data), orders)
    assert verdict.status == FAILED and "none of the contract's columns found" in verdict.reason
    trimmed = gz("\x0b \t\n" + HEADER + ROW)  # characters Java's trim removes too
    assert sniff(trimmed, len(trimmed), orders).status == OK
    only = gz("\u00a0\n")
    assert sniff(only, len(only), orders).status == FAILED  # not empty: Spark would read it


def test_json_lines_the_python_parser_cannot_take_still_give_keys(contracts_dir):
    """A number of more than 4,300 digits, or nesting deeper than Python's recursion, is read by
    Spark; the check must neither raise nor skip the file's keys."""
    customers = load(contracts_dir, "customers")
    huge = '{"customer_id": ' + "9" * 5000 + ', "name": "A"}\n'
    deep = '{"customer_id": 2, "name": ' + "[" * 100_000 + '"x"' + "]" * 100_000 + "}\n"
    for text in (huge, deep + huge, huge + deep):
        data = gz(text)
        verdict = sniff(data, len(data), customers)
        assert verdict.status == OK and set(verdict.columns) >= {"customer_id", "name"}, verdict.reason
    data = gz(deep)  # no line the check can read (Spark's parser refuses such depth too): the file fails
    verdict = sniff(data, len(data), customers)
    assert verdict.status == FAILED and "no JSON object found" in verdict.reason


def test_utf16_without_a_byte_order_mark_fails_the_file(contracts_dir):
    doc = {"type": "csv", "compression": "none", "options": {"encoding": "UTF-16", "multiline": True}}
    contract = load(contracts_dir, "orders", format=doc)
    with_bom = (HEADER + ROW).encode("utf-16")
    assert sniff(with_bom, len(with_bom), contract).status == OK
    without = (HEADER + ROW).encode("utf-16-le")
    verdict = sniff(without, len(without), contract)
    assert verdict.status == FAILED and "not valid UTF-16 text" in verdict.reason


def test_jsonl(contracts_dir):
    customers = load(contracts_dir, "customers")
    good = gz('{"customer_id": 1, "name": "A", "country": "DE", "updatedAt": "2026-11-01T00:00:00"}\n')
    assert sniff(good, len(good), customers).status == OK
    extra = gz('{"customer_id": 1, "name": "A", "segment": "gold"}\n')
    verdict = sniff(extra, len(extra), customers)
    assert verdict.status == OK and verdict.extra == ("segment",)  # additive policy
    garbage = gz("this is not json\nneither is this\n")
    verdict = sniff(garbage, len(garbage), customers)
    assert verdict.status == FAILED and "not JSON Lines" in verdict.reason


def test_parquet_magic():
    assert sniff_parquet(b"PAR1", b"PAR1", 100).status == OK
    assert sniff_parquet(b"PK\x03\x04", b"\x00\x00\x00\x00", 100).status == FAILED
    assert sniff_parquet(b"", b"", 0).status == EMPTY


def test_additive_policy_allows_missing_nullable_only(contracts_dir):
    customers = load(contracts_dir, "customers")
    names = [c.source_name for c in customers.columns]
    assert check_columns([n for n in names if n != "email"], customers).status == OK
    verdict = check_columns([n for n in names if n != "customer_id"], customers)
    assert verdict.status == FAILED and "missing columns customer_id" in verdict.reason


def test_parquet_columns_from_the_footer_alone(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "f.parquet"
    table = pa.table({"meter_id": ["m1", "m2"], "kwh": [1.5, 2.0],
                      "reading": pa.array([{"a": 1}, {"a": 2}])})
    pq.write_table(table, path)
    data = path.read_bytes()
    length = parquet_footer_length(data[-8:], len(data))
    assert parquet_footer(data[-(length + 8):]) == (
        (("meter_id", "string"), ("kwh", "double"), ("reading", "struct<a: int64>")), 2)
    with pytest.raises(ValueError, match="does not fit"):
        parquet_footer_length(b"\xff\xff\xff\x7fPAR1", len(data))
    with pytest.raises(OSError, match=r"[Dd]eserializ"):  # pyarrow's error for a garbled footer
        parquet_footer(b"\x00" * length + data[-8:])


def _csv_contract(multiline: bool = False, encoding: str = "UTF-8", **more) -> Contract:
    options = {"header": True, "quote": '"', "escape": '"', "encoding": encoding,
               **({"multiline": True} if multiline else {}), **more}
    return Contract.from_dict({
        "dataset_id": "u", "source": {"prefix": "u/", "pattern": "*.csv"},
        "format": {"type": "csv", "options": options},
        "columns": [{"name": "id", "type": "int"}, {"name": "amount", "type": "decimal(12,2)"},
                    {"name": "note", "type": "string"}],
        "target": {"database": "db", "table": "u"}})


@pytest.mark.parametrize(("name", "text", "line"), [
    ("line break in the last field", 'id,amount,note\n1,10.00,a\n3,30.00,"a\n4,40.00,b"\n', 3),
    ("line break in the first field", 'note,id,amount\n"Street 1\n9",2,20.00\n', 2),
    ("quote never closed", 'id,amount,note\n1,10.00,"27"" monitor\n2,20.00,plain\n3,30.00,plain\n', 2),
    ("after blank lines", '\n\nid,amount,note\n1,10.00,"a\nb"\n', 4),
])
def test_a_record_across_lines_fails_a_file_read_line_by_line(name, text, line):
    """Read line by line, such a record is cut in two, and both pieces may look like records:
    rows nobody wrote. The file fails with the way out; with multiline it is read as it is."""
    verdict = sniff(text.encode(), len(text), _csv_contract())
    assert verdict.status == FAILED, name
    assert verdict.reason.startswith(f"the record on line {line} has a quoted field")
    assert "multiline: true" in verdict.reason
    if name != "quote never closed":
        assert sniff(text.encode(), len(text), _csv_contract(multiline=True)).status == OK


def test_a_quote_never_closed_fails_a_multiline_file():
    text = 'id,amount,note\n1,10.00,"27"" monitor\n2,20.00,plain\n3,30.00,plain\n'
    verdict = sniff(text.encode(), len(text), _csv_contract(multiline=True))
    assert (verdict.status, verdict.reason) == (
        FAILED, "a quoted field is never closed: the rest of the file would be read as its value")
    closed = text.replace("monitor\n", 'monitor"\n')
    assert sniff(closed.encode(), len(closed), _csv_contract(multiline=True)).status == OK
    # a head cut short may end inside a field that goes on: no verdict from the count then
    assert sniff(text.encode(), len(text) + 100, _csv_contract(multiline=True)).status == OK


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_every_line_end_spark_reads_is_accepted(end):
    text = end.join(["id,amount,note", "1,10.00,a", '2,20.00,"b, c"']) + end
    assert sniff(text.encode(), len(text), _csv_contract()).status == OK


def test_a_head_cut_inside_a_character_or_before_a_line_end():
    """The head is cut at a byte count: it may end inside a UTF-16 character (the newline of
    UTF-16-LE is 0A 00, so cutting at the byte 0A split it), or before the first line ends."""
    from lake_ingest._sniff import HEAD_BYTES

    utf16 = _csv_contract(multiline=True, encoding="UTF-16")
    rows = "".join(f"{i},{i}.00,note {i}\n" for i in range(20000))
    data = ("id,amount,note\n" + rows).encode("utf-16")
    assert len(data) > HEAD_BYTES
    for cut in (HEAD_BYTES, HEAD_BYTES - 1):
        assert sniff(data[:cut], len(data), utf16).status == OK, cut

    jsonl = Contract.from_dict({"dataset_id": "j", "source": {"prefix": "j/", "pattern": "*.jsonl"},
                                "format": {"type": "jsonl"}, "columns": [{"name": "id", "type": "int"},
                                                                          {"name": "blob", "type": "string"}],
                                "target": {"database": "db", "table": "j"}})
    record = ('{"id": 1, "blob": "' + "x" * (HEAD_BYTES + 10) + '"}\n').encode()
    assert sniff(record[:HEAD_BYTES], len(record), jsonl).status == OK  # its keys are listed by Spark
    header = ("id," + ",".join(f"c{i}" for i in range(60000)) + "\n").encode()
    long_line = sniff(header[:HEAD_BYTES], len(header), _csv_contract())
    assert (long_line.status, long_line.reason) == (FAILED, "the first line is longer than the 256 KiB checked")


def test_a_reason_names_at_most_twenty_columns(orders):
    """Reasons are stored in DynamoDB items with a size limit: a file of hundreds of new columns
    names the first twenty and counts the rest."""
    header = HEADER.strip().split(",") + [f"EXTRA_{i}" for i in range(300)]
    data = gzip.compress((",".join(header) + "\n" + ROW).encode())
    verdict = sniff(data, len(data), orders)
    assert verdict.status == FAILED
    assert verdict.reason == ("unexpected columns " + ", ".join(f"EXTRA_{i}" for i in range(20))
                              + " and 280 more (schema_evolution: strict)")


@pytest.mark.parametrize(("text", "escape", "comment", "expected"), [
    ('id,amount,note\n1,10.00,27" monitor\n', '"', None, (None, False)),  # a quote inside a field is text
    ('id,amount,note\n# 5" screen\n1,10.00,a\n', '"', "#", (None, False)),
    ('id,amount,note\n1,2,3\n# x,"unclosed\n4,5,6\n', '"', "#", (None, False)),  # a comment line later on
    ('id,amount,note\n1,10.00,C:\\temp\\\n2,3,4\n', "\\", None, (None, False)),  # escapes count in quotes only
    ('id,amount,note\n1,10.00,"C:\\temp\\\\"\n2,3,4\n', "\\", None, (None, False)),  # an escaped escape
    ('id,n\n1,"a \\" b"\n', "\\", None, (None, False)),
    ('id,n\n1,"a ""q"" b"\n2,"x\r\ny"\r\n', '"', None, (3, False)),
    ('id,n\n1, "not quoted\n', '"', None, (None, False)),  # a quote opens a field only as its first character
    ('id,n\n1,"open\n2,x\n', '"', None, (2, True)),
])
def test_quotes_are_followed_as_spark_reads_them(text, escape, comment, expected):
    from lake_ingest._sniff import _quoted_spans_stepwise, quoted_spans

    assert quoted_spans(text, '"', escape, ",", comment) == expected
    assert _quoted_spans_stepwise(text, '"', escape, ",", comment) == expected


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("escape", ['"', "\\"])
def test_following_only_the_quotes_agrees_with_following_every_character(delimiter, escape):
    """Without comment lines the sniffer visits only the quotes; on every text of quotes, escape
    characters, delimiters, CR, LF and letters it must find what following every character finds."""
    import random

    from lake_ingest._sniff import _quoted_spans_stepwise, quoted_spans

    rng = random.Random(f"{delimiter}{escape}")
    pieces = ['"', '""', "\\", delimiter, "a", " ", "\n", "\r", "\r\n"]
    opened = closed_open = 0
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        found = quoted_spans(text, '"', escape, delimiter, None)
        assert found == _quoted_spans_stepwise(text, '"', escape, delimiter, None), repr(text)
        opened += found[0] is not None
        closed_open += found[1]
    assert opened > 500 and closed_open > 500  # the texts reach both findings often


def test_a_multiline_file_with_a_quote_in_an_unquoted_field_is_fine():
    text = 'id,amount,note\n1,10.00,27" monitor\n# 5" screen\n2,20.00,"two\nlines"\n'
    assert sniff(text.encode(), len(text), _csv_contract(multiline=True, comment="#")).status == OK


def test_the_first_record_of_a_file_without_header_is_checked_too():
    contract = Contract.from_dict({
        "dataset_id": "u", "source": {"prefix": "u/", "pattern": "*.csv"},
        "format": {"type": "csv", "options": {"header": False, "quote": '"', "escape": '"'}},
        "columns": [{"name": "id", "type": "int"}, {"name": "amount", "type": "decimal(12,2)"},
                    {"name": "note", "type": "string"}],
        "target": {"database": "db", "table": "u"}})
    text = '1,10.00,"a\nb"\n2,20.00,c\n'
    verdict = sniff(text.encode(), len(text), contract)
    assert verdict.status == FAILED and verdict.reason.startswith("the record on line 1 has a quoted field")
