"""Whole-file checks on the first bytes of a raw file, before Spark reads it."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    except UnicodeError as exc:  # UTF-16 or UTF-32 without a byte order mark, for one
        return Sniff(FAILED, f"not valid {encoding} text: {exc}")
    blank = _blank_for(contract)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not complete:
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut < 0 or blank(text[: cut + 1]):  # not one whole line with data in the head
            if contract.format.type == "jsonl":  # a long record: its keys are listed with all the others
                return Sniff(OK)
            return Sniff(FAILED, f"the first line is longer than the {HEAD_BYTES // 1024} KiB checked")
        text = text[: cut + 1]
    if blank(text):
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


def parquet_footer(footer: bytes) -> tuple[tuple[tuple[str, str], ...], int]:
    """Top-level columns of a Parquet file with their Arrow types, and its number of rows, from
    its footer (the metadata plus the last 8 bytes).

    Two ranged reads and no Spark job per file. Needs pyarrow (present locally; on Glue the
    caller falls back to Spark when it is missing).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(pa.BufferReader(PARQUET_MAGIC + footer))
    return tuple((f.name, str(f.type)) for f in metadata.schema.to_arrow_schema()), metadata.num_rows


def _names(names: Sequence[str], shown: int = 20) -> str:
    """Column names for a reason: the first ``shown`` of them, then how many more. A reason is
    kept in the ledger and the run record, whose DynamoDB item has a size limit."""
    names = list(names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(n[:100] for n in names[:shown]) + more


#: What the readers skip as a blank line: Spark's CSV reader drops lines that Java's
#: ``String.trim`` empties (every character up to U+0020, but not a no-break space), and Jackson
#: skips only JSON's whitespace. A line Python's ``str.strip`` empties may hold data for them.
_CSV_BLANK = "".join(chr(c) for c in range(0x21))
_JSON_BLANK = " \t\r\n"


def _blank_for(contract: Contract) -> Callable[[str], bool]:
    """Whether text holds nothing the contract's reader would read (see ``_CSV_BLANK``)."""
    chars = _JSON_BLANK if contract.format.type == "jsonl" else _CSV_BLANK
    return lambda text: not text.strip(chars)


def check_columns(found: Sequence[str], contract: Contract, *, sparse: bool = False) -> Sniff:
    """Compare the columns a file holds with the contract and its schema-evolution policy.

    ``sparse`` formats (JSON Lines) may leave out keys; their rows just get nulls. A key can also
    first appear after the part of the file that was looked at, so the columns to read are then
    every contract column, plus the new keys found.
    """
    expected = [c.source_name for c in contract.columns]
    known = set(expected)
    if not known.intersection(found):
        shown = ", ".join(repr(n[:100]) for n in list(found)[:5])  # quoted: a name may be blank to the eye
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
    blank = _blank_for(contract)

    def skipped(line: str) -> bool:  # as Spark's reader: blank lines, and comment lines when set
        return blank(line) or bool(comment and line.startswith(comment))

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
    if verdict.status == OK:
        spanning, open_at_end = quoted_spans(text, fmt.quote, fmt.escape, fmt.delimiter, comment)
        if spanning is not None and not fmt.multiline:
            # Read line by line, such a record is cut in two, and when the field is the first or
            # the last of the record both pieces may pass for records: rows nobody wrote.
            return Sniff(FAILED, f"the record on line {start + spanning} has a quoted field that runs past the "
                                 "end of the line: the contract reads line by line, so quoted line breaks need "
                                 "format.options.multiline: true; otherwise a quote is not closed")
        if open_at_end and fmt.multiline and complete:
            return Sniff(FAILED, "a quoted field is never closed: the rest of the file would be read as its value")
    return verdict


def quoted_spans(text: str, quote: str, escape: str, delimiter: str, comment: str | None) -> tuple[int | None, bool]:
    """Follow the quotes of CSV text as Spark's parser (univocity) reads them: the line (from 1)
    on which the first quoted field that runs past the end of its line opens, or None, and
    whether the text ends inside a quoted field.

    A quote opens a quoted field only as the first character of a field; inside one, a doubled
    quote (when the escape is the quote) or the escape character before a quote stands for a
    quote (and two escape characters for one), and the next quote closes the field. Elsewhere
    quotes and the escape character are text. A line that starts a record with the comment
    character is skipped. CR, LF and CR LF each end a line.

    Without comment lines and with a one-character delimiter, only the quotes are visited: a
    quote outside a quoted field opens one when the character before it ends a field or a line
    (a delimiter or line end seen outside quotes always does). This is the common case, and a
    run sniffs hundreds of files; otherwise every delimiter and line end is followed."""
    if comment or len(delimiter) != 1 or {quote, escape} & {delimiter, "\r", "\n"}:
        return _quoted_spans_stepwise(text, quote, escape, delimiter, comment)
    inner = re.compile("|".join(re.escape(c) for c in sorted({quote, escape})))
    pos, first = 0, None
    while True:
        at = text.find(quote, pos)
        if at < 0:
            return first, False
        if at and text[at - 1] not in (delimiter, "\n", "\r"):
            pos = at + 1  # a quote inside an unquoted field is text
            continue
        end, p = -1, at + 1
        while (m := inner.search(text, p)) is not None:
            c, k = m.group(), m.start()
            if _escaped(text, c, k, quote, escape):
                p = k + 2
            elif c == quote:
                end = k
                break
            else:
                p = k + 1
        stop = len(text) if end < 0 else end
        if first is None and (text.find("\n", at, stop) >= 0 or text.find("\r", at, stop) >= 0):
            first = 1 + len(_LINE_END.findall(text, 0, at))
        if end < 0:
            return first, True
        pos = end + 1


def _quoted_spans_stepwise(text: str, quote: str, escape: str, delimiter: str,
                           comment: str | None) -> tuple[int | None, bool]:
    """``quoted_spans`` for any delimiter and comment lines: every delimiter and line end is
    followed, to know where fields and records start."""
    special = re.compile("|".join(re.escape(c) for c in sorted({quote, escape, delimiter, "\r", "\n"})))
    line, pos, field_at, inside, opened, first = 1, 0, 0, False, 0, None
    record_start = True
    while True:
        if record_start and not inside and comment and text.startswith(comment, pos):
            end = _LINE_END.search(text, pos)
            if end is None:
                return first, False
            line, pos, field_at = line + 1, end.end(), end.end()
            continue
        m = special.search(text, pos)
        if m is None:
            return first, inside
        c, at = m.group(), m.start()
        if c in "\r\n":
            after = at + 2 if text.startswith("\r\n", at) else at + 1
            if inside and first is None:
                first = opened
            line, pos = line + 1, after
            if not inside:
                field_at, record_start = after, True
            continue
        record_start = False
        if inside:
            if _escaped(text, c, at, quote, escape):
                pos = at + 2
            elif c == quote:
                inside, pos = False, at + 1
            else:
                pos = at + 1
        elif c == quote and at == field_at:
            inside, opened, pos = True, line, at + 1
        elif c == delimiter:
            field_at = pos = at + 1
        else:
            pos = at + 1


_LINE_END = re.compile(r"\r\n|\r|\n")


def _escaped(text: str, c: str, at: int, quote: str, escape: str) -> bool:
    """Inside a quoted field: whether ``c`` at ``at`` and the character after it stand for one
    character: a doubled quote (when the escape is the quote), or the escape character before a
    quote or before another escape character (Spark's default escape is the backslash)."""
    if escape == quote:
        return c == quote and text.startswith(quote, at + 1)
    return c == escape and text.startswith((quote, escape), at + 1)


def _sniff_jsonl(text: str, contract: Contract) -> Sniff:
    keys: list[str] = []
    parsed = 0
    lines = [ln for ln in text.splitlines() if ln.strip()][:50]
    for line in lines:
        try:  # only the keys matter: numbers stay text (Python refuses integers of over 4,300 digits)
            obj = json.loads(line, parse_int=str, parse_float=str)
        except (ValueError, RecursionError):  # not JSON, or nested too deep for Python's parser
            continue
        if isinstance(obj, dict):
            parsed += 1
            keys.extend(k for k in obj if k not in keys)
    if parsed == 0:
        return Sniff(FAILED, f"no JSON object found in the first {len(lines)} lines; not JSON Lines?")
    return check_columns(keys, contract, sparse=True)
