"""Whole-file checks on the first bytes of a raw file, before Spark reads it."""

from __future__ import annotations

import codecs
import csv
import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._contract import RESERVED_SOURCE_PREFIXES, Contract, is_column_name

HEAD_BYTES = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"

OK, EMPTY, FAILED = "ok", "empty", "failed"


@dataclass(frozen=True)
class Sniff:
    """Verdict on one file: ``ok`` (read it), ``empty`` or ``failed`` (with the reason).

    ``columns`` are the source columns in the order the file holds them (CSV header order);
    ``extra`` the ones the contract does not know, admitted by an additive schema policy.
    """

    status: str
    reason: str = ""
    columns: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


def sniff(head: bytes, size: int, contract: Contract) -> Sniff:
    """Check the first ``HEAD_BYTES`` of a text file (CSV or JSON Lines) against its contract."""
    if size == 0:
        return Sniff(EMPTY, "file has 0 bytes")
    complete = size <= len(head)
    data = head
    if contract.format.compression == "gzip":
        if not head.startswith(GZIP_MAGIC):
            return Sniff(FAILED, "the contract says gzip but the file is not gzip-compressed")
        try:  # a gzip file may hold several members one after the other (cat a.gz b.gz); Hadoop reads them all
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(head)
            while inflater.eof and inflater.unused_data:
                rest = inflater.unused_data
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data += inflater.decompress(rest)
        except zlib.error as exc:
            return Sniff(FAILED, f"corrupt gzip stream: {exc}")
        if complete and not inflater.eof:
            return Sniff(FAILED, "truncated gzip stream: the file ends before its compressed data does")
    elif head.startswith(GZIP_MAGIC):
        return Sniff(FAILED, "the file is gzip-compressed but the contract says compression: none")
    encoding = contract.format.encoding
    try:  # a head cut short may end inside a character: decode what is whole, then cut at a line end
        text = codecs.getincrementaldecoder(encoding)().decode(data, final=complete)
    except UnicodeDecodeError as exc:
        return Sniff(FAILED, f"not valid {encoding} text (byte 0x{data[exc.start]:02x} at offset {exc.start})")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not complete:
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut < 0:  # not one whole line in the head
            if contract.format.type == "jsonl":  # a long record: its keys are listed with all the others
                return Sniff(OK)
            return Sniff(FAILED, f"the first line is longer than the {HEAD_BYTES // 1024} KiB checked")
        text = text[: cut + 1]
    if not text.strip():
        return Sniff(EMPTY, "file holds no data")
    if contract.format.type == "csv":
        return _sniff_csv(text, complete, contract)
    return _sniff_jsonl(text, contract)


def sniff_parquet(head: bytes, tail: bytes, size: int) -> Sniff:
    """A Parquet file starts and ends with the magic bytes ``PAR1``."""
    if size == 0:
        return Sniff(EMPTY, "file has 0 bytes")
    if not head.startswith(PARQUET_MAGIC) or not tail.endswith(PARQUET_MAGIC):
        return Sniff(FAILED, "not a Parquet file (magic bytes PAR1 missing)")
    return Sniff(OK)


def parquet_footer_length(tail: bytes, size: int) -> int:
    """The length of a Parquet file's metadata, from its last 8 bytes (length, then ``PAR1``)."""
    length = int.from_bytes(tail[-8:-4], "little")
    if len(tail) < 8 or length <= 0 or length + 12 > size:
        raise ValueError(f"footer length {length} does not fit a file of {size} bytes")
    return length


def parquet_footer_schema(footer: bytes) -> tuple[tuple[str, str], ...]:
    """Top-level columns of a Parquet file and their Arrow types, from its footer (the metadata
    plus the last 8 bytes).

    Two ranged reads and no Spark job per file. Needs pyarrow (present locally; on Glue the
    caller falls back to Spark when it is missing).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(pa.BufferReader(PARQUET_MAGIC + footer))
    return tuple((f.name, str(f.type)) for f in metadata.schema.to_arrow_schema())


def _names(names: Sequence[str], shown: int = 20) -> str:
    """Column names for a reason: the first ``shown`` of them, then how many more. A reason is
    kept in the ledger and the run record, whose DynamoDB item has a size limit."""
    names = list(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(n[:100] for n in names[:shown]) + more


def check_columns(found: Sequence[str], contract: Contract, *, sparse: bool = False) -> Sniff:
    """Compare the columns a file holds with the contract and its schema-evolution policy.

    ``sparse`` formats (JSON Lines) may leave out keys; their rows just get nulls. A key can also
    first appear after the part of the file that was looked at, so the columns to read are then
    every contract column, plus the new keys found.
    """
    expected = [c.source_name for c in contract.columns]
    known = set(expected)
    if not known.intersection(found):
        shown = ", ".join(list(found)[:5])
        return Sniff(FAILED, f"none of the contract's columns found (the file starts with: {shown}); "
                             "missing header, wrong delimiter or wrong format?")
    dupes = sorted({n for n in found if list(found).count(n) > 1})
    if dupes:
        return Sniff(FAILED, f"duplicate columns in the file: {_names(dupes)}")
    extra = tuple(n for n in found if n not in known)
    if extra and contract.schema_evolution == "strict":
        return Sniff(FAILED, f"unexpected columns {_names(extra)} (schema_evolution: strict)")
    unusable = [n for n in extra if not is_column_name(n)]
    if unusable:  # failing the file, not the run: the dataset's other files still go through
        return Sniff(FAILED, f"new columns {_names(unusable)} are not usable table column names (lower-case "
                             "identifiers); declare them in the contract, with the file's name as their source")
    # Spark compares names without regard to case, and the job adds columns of its own
    taken = {n.lower() for n in expected} | {c.name.lower() for c in contract.columns}
    clashing = [n for n in extra if n.lower() in taken or n.lower().startswith(RESERVED_SOURCE_PREFIXES)]
    if clashing:
        return Sniff(FAILED, f"new columns {_names(clashing)} clash with a contract column, a source name (names "
                             "are compared without regard to case) or a column the job adds")
    if not sparse:
        missing = [c for c in contract.columns if c.source_name not in found]
        required = [c.source_name for c in missing if not c.nullable or contract.schema_evolution == "strict"]
        if required:
            return Sniff(FAILED, f"missing columns {_names(required)}")
    return Sniff(OK, columns=tuple(expected) + extra if sparse else tuple(found), extra=extra)


def _sniff_csv(text: str, complete: bool, contract: Contract) -> Sniff:
    fmt = contract.format
    escape = None if fmt.escape == fmt.quote else fmt.escape
    comment = fmt.options.get("comment")

    def skipped(line: str) -> bool:  # as Spark's reader: blank lines, and comment lines when set
        return not line.strip() or bool(comment and line.startswith(comment))

    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not skipped(line)), len(lines))
    text = "".join(lines[start:])
    # newline="": the csv module sees the line ends as they are (CR alone too, as Spark reads it)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter, quotechar=fmt.quote,
                        escapechar=escape, doublequote=fmt.escape == fmt.quote)
    try:
        first = next(reader)
    except csv.Error as exc:
        return Sniff(FAILED, f"cannot parse the first line as CSV: {exc}")
    if not fmt.header:
        if len(first) != len(contract.columns):
            return Sniff(FAILED, f"expected {len(contract.columns)} fields per line, found {len(first)} "
                                 "(wrong delimiter?)")
        verdict = Sniff(OK, columns=tuple(c.source_name for c in contract.columns))
    else:
        verdict = check_columns([h.strip() for h in first], contract)
        if verdict.status == OK and complete and sum(1 for ln in text.splitlines() if not skipped(ln)) <= 1:
            return Sniff(EMPTY, "file holds a header and no data rows")
    if verdict.status == OK and not fmt.multiline:
        spanning = _record_across_lines(reader, start)
        if spanning:
            return Sniff(FAILED, spanning)
    if verdict.status == OK and fmt.multiline and complete:
        # Read whole, a quote that is never closed swallows every record after it. Escaped
        # quotes come in pairs ("") or go with their escape character (\"); the rest must pair up.
        bare = text if escape is None else text.replace(escape + escape, "").replace(escape + fmt.quote, "")
        if bare.count(fmt.quote) % 2:
            return Sniff(FAILED, "a quoted field is never closed: the rest of the file would be read as its value")
    return verdict


def _record_across_lines(reader: Any, skipped_lines: int) -> str | None:
    """Why the records after the first cannot be read line by line, or None.

    Read line by line (no ``multiline``), a record whose quoted field holds a line break is cut
    in two, and when the field is the first or the last of the record both pieces may look
    like whole records: rows nobody wrote would be ingested. A quote that is never closed
    does the same. Either way the checked head then holds a record that spans lines (a record
    the head's cut splits cannot: the head ends at a line end)."""
    try:
        for record in reader:
            if any("\n" in field or "\r" in field for field in record):
                return (f"the record ending on line {skipped_lines + reader.line_num} has a quoted field that "
                        "runs past the end of a line: the contract reads line by line, so quoted line breaks "
                        "need format.options.multiline: true; otherwise a quote is not closed")
    except csv.Error:  # a malformed line: Spark's reader quarantines it, so it is no reason here
        return None
    return None


def _sniff_jsonl(text: str, contract: Contract) -> Sniff:
    keys: list[str] = []
    parsed = 0
    lines = [ln for ln in text.splitlines() if ln.strip()][:50]
    for line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            parsed += 1
            keys.extend(k for k in obj if k not in keys)
    if parsed == 0:
        return Sniff(FAILED, f"no JSON object found in the first {len(lines)} lines; not JSON Lines?")
    return check_columns(keys, contract, sparse=True)
