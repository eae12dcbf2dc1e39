"""Dataset contracts: the typed, validated description of one dataset."""

from __future__ import annotations

import datetime as dt
import decimal
import fnmatch
import functools
import math
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Column names the job adds itself; contracts may not use the prefix.
LINEAGE_PREFIX = "lake_"
SOURCE_FILE_COL = "lake_source_file"
INGESTED_AT_COL = "lake_ingested_at"
RUN_ID_COL = "lake_run_id"  # a partition key: every run appends under its own prefix

SIMPLE_TYPES = ("string", "boolean", "smallint", "int", "bigint", "float", "double", "date", "timestamp")
PARTITION_TYPES = ("string", "date", "smallint", "int", "bigint", "boolean")
FORMATS = ("csv", "jsonl", "parquet")
COMPRESSIONS = ("none", "gzip")
ACTIONS = ("reject", "warn", "fail")
RULE_TYPES = ("not_null", "unique", "allowed_values", "range", "regex")
EVOLUTION_POLICIES = ("strict", "additive")
RESERVED_RULE_NAMES = ("duplicate", "malformed")  # reported by the job itself
CSV_OPTIONS: dict[str, type] = {"delimiter": str, "header": bool, "quote": str, "escape": str, "encoding": str, "comment": str,
                               "multiline": bool}
JSONL_OPTIONS: dict[str, type] = {"encoding": str}

_DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
#: Table, database and column names: lower case, starting with a letter (the job's own working
#: columns start with '_', so no contract column can shadow one).
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,127}$")
IDENT_TEXT = "a lower-case identifier starting with a letter ([a-z][a-z0-9_]*)"
#: Source names the job's reader uses itself (compared in lower case, as Spark compares names).
RESERVED_SOURCE_PREFIXES = ("_lake", "_typed_", "_corrupt_record", LINEAGE_PREFIX)
#: Reader options that Spark and the sniffer take as one character.
SINGLE_CHAR_OPTIONS = ("delimiter", "quote", "escape", "comment")
_INT_RANGES = {"smallint": 2**15, "int": 2**31, "bigint": 2**63}
#: Text that every ASCII-compatible encoding stores as the same bytes as ASCII.
_ASCII_PROBE = "az AZ 09 ,;|\t\"'\\{}[]:-.#\r\n"


def is_column_name(name: str) -> bool:
    """Whether ``name`` can be a table column as it is: a lower-case identifier starting with a letter."""
    return bool(_IDENT.match(name))


def ascii_compatible(encoding: str) -> bool:
    """Whether an encoding stores ASCII text as ASCII bytes (UTF-8, ISO-8859-1, windows-1252...,
    not UTF-16 or EBCDIC). Spark splits text files into lines before decoding them, so only
    such encodings can be read line by line."""
    try:
        return _ASCII_PROBE.encode(encoding) == _ASCII_PROBE.encode("ascii")
    except (LookupError, UnicodeError):
        return False

#: Glue's limit on a table's description, which the job copies from the contract.
MAX_DESCRIPTION = 2048

DATASET_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


#: Java regex syntax that Python's ``re`` does not know: Unicode classes (``\p{L}``, ``\pL``),
#: ``(?<name>...)`` groups, ``\x{...}`` code points, the inline flags ``d`` and ``U``, and the
#: escapes ``\z``, ``\Q...\E``, ``\h``, ``\H``, ``\R``, ``\X``, ``\G``, ``\e`` and ``\cX``.
_JAVA_ONLY_REGEX = re.compile(r"\\[pP][A-Za-z{]|\(\?<[A-Za-z]|\\x\{|\(\?[a-zA-Z-]*[dU]|\\[zQEhHRXGec]")


class ContractError(ValueError):
    """A contract is missing or invalid; the message names the dataset and every bad field."""

    def __init__(self, dataset_id: str, problems: Iterable[str]) -> None:
        self.dataset_id = dataset_id
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid contract for dataset '{dataset_id}':\n{lines}")


#: A zone or offset after the time of a timestamp's text, as Spark's cast reads them ('Z',
#: '+01:00', '+0100', ' UTC', 'GMT+01:00', 'Europe/Berlin'): such text names its instant itself.
ZONE_AFTER_TIME = (r"[0-9]:[0-9]{1,2}(:[0-9]{1,2})?(\.[0-9]*)?\s*"
                   r"(Z|[+-][0-9]{1,2}(:?[0-9]{2}){0,2}|[A-Za-z][A-Za-z0-9_/+:-]*)\s*$")

#: The letters of a Spark datetime pattern that read a zone or an offset.
_ZONE_LETTERS = re.compile(r"[XxZOVz]")


def _unquoted(pattern: str) -> str:
    """A datetime pattern without its quoted literal text."""
    return re.sub(r"'[^']*'", "", pattern)


def pattern_has_zone(pattern: str) -> bool:
    """Whether a datetime pattern fixes the zone of what it reads: a zone or offset letter
    (``X``, ``x``, ``Z``, ``O``, ``V``, ``z``) outside quoted text, or a quoted ``'Z'``, ``'UTC'``
    or ``'GMT'`` (ISO text written in UTC, ``yyyy-MM-dd'T'HH:mm:ss'Z'``)."""
    if any(q.strip().upper() in ("Z", "UTC", "GMT", "UT") for q in re.findall(r"'([^']*)'", pattern)):
        return True
    return _ZONE_LETTERS.search(_unquoted(pattern)) is not None


def optional_zone(pattern: str) -> bool:
    """Whether a zone or offset letter is inside an optional section (``[XXX]``): then some
    values name their zone and others do not, which one reading of the pattern cannot tell."""
    return any(_ZONE_LETTERS.search(part) for part in re.findall(r"\[([^\]]*)\]", _unquoted(pattern)))


def is_time_zone(name: Any) -> bool:
    """Whether ``name`` is a zone of the IANA database (``Europe/Berlin``, ``UTC``), as Python's
    ``zoneinfo`` and Java's ``ZoneId`` both know them; not an offset such as ``+01:00``, which
    would ignore summer time."""
    if name == "UTC":  # the default: known without the zone database
        return True
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*", name):
        return False
    if name.startswith(("posix/", "right/")) or name in ("localtime", "posixrules", "Factory"):
        return False  # files of the zone database that are no zones of Java's (Spark's)
    try:
        zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError:
        return not _have_zone_database()  # without one (a slim image), Java's check at run time decides
    except ValueError:
        return False
    return True


@functools.cache
def _have_zone_database() -> bool:
    """Whether Python finds a zone database (the system's, or the ``tzdata`` package)."""
    return bool(zoneinfo.available_timezones())


def normalize_type(type_name: str) -> str | None:
    """Return the canonical spelling of a column type, or None when it is not supported."""
    t = re.sub(r"\s+", "", str(type_name).strip().lower())
    if t in SIMPLE_TYPES:
        return t
    if t in ("integer", "long"):
        return {"integer": "int", "long": "bigint"}[t]
    m = _DECIMAL.match(t)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if 1 <= precision <= 38 and 0 <= scale <= precision:
            return f"decimal({precision},{scale})"
    return None


@dataclass(frozen=True)
class Column:
    """One column of the curated table and where it comes from in the raw data."""

    name: str
    type: str
    nullable: bool = True
    source: str | None = None
    format: str | None = None  # parse pattern for date / timestamp columns
    description: str = ""
    dictionary: bool | None = None  # Parquet dictionary encoding; None: the contract's default

    @property
    def source_name(self) -> str:
        return self.source or self.name


@dataclass(frozen=True)
class Rule:
    """A data-quality rule and what to do with rows that break it."""

    name: str
    type: str
    columns: tuple[str, ...]
    action: str
    values: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Source:
    bucket: str  # "raw" means the raw zone the job is given; anything else is a bucket name
    prefix: str
    pattern: str

    def matches(self, key: str) -> bool:
        """True when an object key under the prefix has a file name matching the pattern."""
        if not key.startswith(self.prefix):
            return False
        name = key.rsplit("/", 1)[-1]
        return bool(name) and fnmatch.fnmatchcase(name, self.pattern)


@dataclass(frozen=True)
class FileFormat:
    type: str
    compression: str = "none"
    options: Mapping[str, Any] = field(default_factory=dict)
    null_values: tuple[str, ...] = ("",)
    #: The zone of timestamps written without an offset (local times of the source system);
    #: they are stored as the instants they name, in UTC.
    time_zone: str = "UTC"

    @property
    def encoding(self) -> str:
        return str(self.options.get("encoding", "UTF-8"))

    @property
    def header(self) -> bool:
        return bool(self.options.get("header", True))

    @property
    def delimiter(self) -> str:
        return str(self.options.get("delimiter", ","))

    @property
    def quote(self) -> str:
        return str(self.options.get("quote", '"'))

    @property
    def escape(self) -> str:
        """RFC 4180's by default: a quote inside a quoted field is doubled. (Spark's default, a
        backslash, reads the doubled quotes of most exports as text and lets a backslash before
        the closing quote, 'C:\\temp\\', run the field on.)"""
        return str(self.options.get("escape", '"'))

    @property
    def multiline(self) -> bool:
        """Quoted CSV fields may hold line breaks (a record spans lines; each file is read whole)."""
        return bool(self.options.get("multiline", False))


@dataclass(frozen=True)
class Contract:
    """Everything the job needs to know about one dataset."""

    dataset_id: str
    version: int
    enabled: bool
    source: Source
    format: FileFormat
    columns: tuple[Column, ...]
    database: str
    table: str
    primary_key: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    dedupe_order_by: tuple[str, ...] = ()
    deduplicate: bool = False
    rules: tuple[Rule, ...] = ()
    schema_evolution: str = "strict"
    description: str = ""

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def data_columns(self) -> tuple[Column, ...]:
        """Columns stored inside the Parquet files (partition columns live in the path)."""
        return tuple(c for c in self.columns if c.name not in self.partition_by)

    @property
    def plain_encoded(self) -> tuple[str, ...]:
        """Data columns written without Parquet dictionary encoding: those marked
        ``dictionary: false`` and a one-column primary key unless marked otherwise.

        Parquet builds a dictionary for every column and, for a column of mostly distinct values,
        throws it away at the end of the page and writes the values plainly; skipping that work
        gives the same files faster (``make bench`` measures it).
        """
        single_key = self.primary_key[0] if len(self.primary_key) == 1 else None
        return tuple(c.name for c in self.data_columns
                     if c.dictionary is False or (c.dictionary is None and c.name == single_key))

    @property
    def quarantine_table(self) -> str:
        return f"{self.table}_quarantine"

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Contract:
        """Build and validate a contract; raise ContractError listing every problem found."""
        return _Parser(doc).parse()


class _Parser:
    """Turns a plain document into a Contract, collecting every problem before failing."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        if not isinstance(doc, Mapping):
            raise ContractError("?", [f"the contract must be a mapping, got {type(doc).__name__}"])
        self.doc = doc
        self.dataset_id = str(doc.get("dataset_id", "?"))
        self.problems: list[str] = []
        self.untyped: set[str] = set()  # columns of an unknown type

    def err(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def section(self, doc: Any, where: str, allowed: Iterable[str], required: Iterable[str] = ()) -> Mapping[str, Any]:
        if not isinstance(doc, Mapping):
            self.err(where, f"must be a mapping, got {type(doc).__name__}")
            return {}
        for key in doc:
            if key not in allowed:
                self.err(f"{where}.{key}" if where else str(key), f"unknown field (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in doc:
                self.err(f"{where}.{key}" if where else str(key), "is required")
        return doc

    def names(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.err(where, "must be a list of column names")
            return ()
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            self.err(where, f"lists {', '.join(repr(v) for v in twice)} twice")
        return tuple(value)

    def parse(self) -> Contract:
        d = self.section(
            self.doc,
            "",
            {"dataset_id", "version", "enabled", "description", "source", "format", "columns", "primary_key",
             "partition_by", "deduplicate", "target", "quality", "schema_evolution"},
            ("dataset_id", "source", "format", "columns", "target"),
        )
        if "dataset_id" in d and not (isinstance(d["dataset_id"], str) and DATASET_ID_PATTERN.match(d["dataset_id"])):
            self.err("dataset_id", "must match [a-z][a-z0-9_]* (at most 63 characters)")
        version = d.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.err("version", "must be a positive integer")
            version = 1
        enabled = d.get("enabled", True)
        if not isinstance(enabled, bool):
            self.err("enabled", "must be true or false")
        source = self._source(d.get("source", {}))
        fmt = self._format(d.get("format", {}))
        columns = self._columns(d.get("columns", []))
        by_name = {c.name: c for c in columns}
        pk = self.names(d.get("primary_key"), "primary_key")
        for name in pk:
            if name not in by_name:
                self.err("primary_key", f"'{name}' is not a column")
            elif by_name[name].nullable:
                self.err("primary_key", f"'{name}' must be declared nullable: false")
        partitions = self.names(d.get("partition_by"), "partition_by")
        for name in partitions:
            if name not in by_name:
                self.err("partition_by", f"'{name}' is not a column")
                continue
            col = by_name[name]
            if col.type not in PARTITION_TYPES and name not in self.untyped:
                self.err("partition_by", f"'{name}' has type {col.type}; partition columns must be one of {', '.join(PARTITION_TYPES)}")
            if col.nullable:
                self.err("partition_by", f"'{name}' must be declared nullable: false")
        if partitions and len(partitions) == len(columns):
            self.err("partition_by", "at least one column must stay outside the partitioning")
        if fmt.time_zone != "UTC":
            for i, col in enumerate(columns):
                if col.type == "timestamp" and col.format and optional_zone(col.format):
                    self.err(f"columns[{i}] ({col.name}).format",
                             f"an optional zone ('{col.format}') with time_zone {fmt.time_zone}: a value with the "
                             "zone and one without cannot both be read right by one pattern; give two columns "
                             "or drop the brackets")
        dedupe, order_by = self._dedupe(d.get("deduplicate"), pk, by_name)
        target = self.section(d.get("target", {}), "target", {"database", "table"}, ("database", "table"))
        for key in ("database", "table"):
            if key in target and not (isinstance(target[key], str) and _IDENT.match(target[key])):
                self.err(f"target.{key}", f"must be {IDENT_TEXT}")
        rules = self._rules(d.get("quality", []), by_name)
        description = d.get("description") or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            self.err("description", f"must be text of at most {MAX_DESCRIPTION} characters (the Glue table's "
                                    "description takes no more)")
        evolution = d.get("schema_evolution", "strict")
        if evolution not in EVOLUTION_POLICIES:
            self.err("schema_evolution", f"'{evolution}' is not one of {', '.join(EVOLUTION_POLICIES)}")
        if self.problems:
            raise ContractError(self.dataset_id, self.problems)
        return Contract(
            dataset_id=self.dataset_id, version=version, enabled=bool(enabled), source=source, format=fmt,
            columns=columns, database=target["database"], table=target["table"], primary_key=pk,
            partition_by=partitions, deduplicate=dedupe, dedupe_order_by=order_by, rules=rules,
            schema_evolution=str(evolution), description=str(description),
        )

    def _source(self, doc: Any) -> Source:
        s = self.section(doc, "source", {"bucket", "prefix", "pattern"}, ("prefix", "pattern"))
        prefix = s.get("prefix", "")
        if not isinstance(prefix, str) or prefix.startswith("/") or (prefix and not prefix.endswith("/")):
            self.err("source.prefix", "must be a relative key prefix ending with '/'")
        pattern = s.get("pattern", "")
        if "pattern" in s and (not isinstance(pattern, str) or not pattern or "/" in pattern):
            self.err("source.pattern", "must be a file-name glob such as 'orders_*.csv' (no '/')")
        bucket = s.get("bucket", "raw")
        if not isinstance(bucket, str) or not re.match(r"^[a-z0-9][a-z0-9.-]{1,62}$", bucket):
            self.err("source.bucket", "must be 'raw' or an S3 bucket name")
        return Source(bucket=str(bucket), prefix=str(prefix), pattern=str(pattern))

    def _format(self, doc: Any) -> FileFormat:
        f = self.section(doc, "format", {"type", "compression", "options", "null_values", "time_zone"}, ("type",))
        ftype = f.get("type")
        if ftype not in FORMATS:
            self.err("format.type", f"'{ftype}' is not one of {', '.join(FORMATS)}")
        compression = f.get("compression", "none")
        if compression not in COMPRESSIONS:
            self.err("format.compression", f"'{compression}' is not one of {', '.join(COMPRESSIONS)}")
        elif ftype == "parquet" and compression != "none":
            self.err("format.compression", "Parquet files carry their own compression; use 'none'")

        options_by_format: dict[str, dict[str, type]] = {"csv": CSV_OPTIONS, "jsonl": JSONL_OPTIONS}
        allowed = options_by_format.get(str(ftype), {})
        options = f.get("options", {}) or {}
        if not isinstance(options, Mapping):
            self.err("format.options", "must be a mapping")
            options = {}
        for key, value in options.items():
            if ftype not in FORMATS:  # reported above; the options of an unknown format are not judged
                break
            if key not in allowed:
                self.err(f"format.options.{key}", f"is not a {ftype} option (allowed: {', '.join(sorted(allowed)) or 'none'})")
            elif not isinstance(value, allowed[key]):
                self.err(f"format.options.{key}", f"must be a {allowed[key].__name__}")
            elif allowed[key] is str and not value:
                self.err(f"format.options.{key}", "must not be empty")
            elif key in SINGLE_CHAR_OPTIONS and len(str(value)) != 1:
                self.err(f"format.options.{key}", f"must be one character, got {value!r}")
        if "encoding" in options and isinstance(options["encoding"], str):
            encoding = options["encoding"]
            try:
                "x".encode(encoding)
            except LookupError:
                self.err("format.options.encoding", f"unknown encoding '{encoding}'")
            else:
                whole_files = ftype == "csv" and options.get("multiline") is True
                if not whole_files and not ascii_compatible(encoding):
                    self.err("format.options.encoding",
                             f"'{encoding}' does not store ASCII text as ASCII bytes (as UTF-16 and EBCDIC do not); "
                             "Spark splits such files into lines before decoding them"
                             + (", unless a CSV contract sets multiline: true" if ftype == "csv" else ""))
        nulls = f.get("null_values", [""])
        if not isinstance(nulls, list) or not all(isinstance(v, str) for v in nulls):
            self.err("format.null_values", "must be a list of strings")
            nulls = [""]
        time_zone = f.get("time_zone", "UTC")
        if not is_time_zone(time_zone):
            self.err("format.time_zone", f"{time_zone!r} is not a time zone of the IANA database, such as "
                                         "'Europe/Berlin' or 'UTC'")
            time_zone = "UTC"
        return FileFormat(type=str(ftype), compression=str(compression), options=dict(options),
                          null_values=tuple(nulls), time_zone=str(time_zone))

    def _columns(self, doc: Any) -> tuple[Column, ...]:
        if not isinstance(doc, list) or not doc:
            self.err("columns", "must be a non-empty list")
            return ()
        out: list[Column] = []
        seen: set[str] = set()
        seen_sources: set[str] = set()
        for i, raw in enumerate(doc):
            where = f"columns[{i}]"
            c = self.section(raw, where, {"name", "type", "nullable", "source", "format", "description", "dictionary"},
                             ("name", "type"))
            name = c.get("name")
            if not isinstance(name, str) or not _IDENT.match(name):
                self.err(f"{where}.name", f"'{name}' must be {IDENT_TEXT}")
                continue
            where = f"columns[{i}] ({name})"
            if name.startswith(LINEAGE_PREFIX):
                self.err(where, f"names starting with '{LINEAGE_PREFIX}' are reserved for lineage columns")
            if name in seen:
                self.err(where, "duplicate column name")
            seen.add(name)
            ctype = normalize_type(c.get("type", ""))
            if ctype is None:
                self.err(f"{where}.type", f"unknown type '{c.get('type')}' (expected one of {', '.join(SIMPLE_TYPES)}, decimal(p,s))")
                ctype = "string"
                self.untyped.add(name)  # the checks that depend on a column's type leave it out
            nullable = c.get("nullable", True)
            if not isinstance(nullable, bool):
                self.err(f"{where}.nullable", "must be true or false")
            source = c.get("source")
            if source is not None and (not isinstance(source, str) or not source):
                self.err(f"{where}.source", "must be a non-empty string")
                source = None
            source_name = source or name
            # Spark compares column names without regard to case
            if source_name.lower() in seen_sources:
                self.err(f"{where}.source", f"source column '{source_name}' is mapped twice "
                                            "(names are compared without regard to case)")
            elif source is not None and source.lower().startswith(RESERVED_SOURCE_PREFIXES):
                self.err(f"{where}.source", f"'{source}' is a name the job uses itself (names starting with "
                                            + ", ".join(f"'{r}'" for r in RESERVED_SOURCE_PREFIXES) + ")")
            seen_sources.add(source_name.lower())
            fmt = c.get("format")
            if fmt is not None and ctype not in ("date", "timestamp"):
                self.err(f"{where}.format", "only date and timestamp columns take a format")
            elif fmt is not None and (not isinstance(fmt, str) or not fmt.strip()):
                self.err(f"{where}.format", "must be a Spark datetime pattern in quotes, such as 'dd/MM/yyyy'")
                fmt = None
            if not isinstance(c.get("description") or "", str):
                self.err(f"{where}.description", "must be text (quote it: YAML reads 2026-01-01 as a date)")
            dictionary = c.get("dictionary")
            if dictionary is not None and not isinstance(dictionary, bool):
                self.err(f"{where}.dictionary", "must be true or false")
            out.append(Column(name=name, type=ctype, nullable=bool(nullable), source=source, format=fmt,
                              description=str(c.get("description") or ""),
                              dictionary=dictionary if isinstance(dictionary, bool) else None))
        return tuple(out)

    def _dedupe(self, doc: Any, pk: tuple[str, ...], by_name: Mapping[str, Column]) -> tuple[bool, tuple[str, ...]]:
        if doc is None or doc is False:  # not `in (None, False)`: 0 == False, and 0 is a mistake to report
            return False, ()
        if doc is not True and not isinstance(doc, Mapping):
            self.err("deduplicate", f"must be true, false or {{order_by: [columns]}}, got {type(doc).__name__}")
            return False, ()
        if not pk:
            self.err("deduplicate", "needs a primary_key")
        if doc is True:
            return True, ()
        d = self.section(doc, "deduplicate", {"order_by"})
        order_by = self.names(d.get("order_by"), "deduplicate.order_by")
        for name in order_by:
            if name not in by_name:
                self.err("deduplicate.order_by", f"'{name}' is not a column")
        return True, order_by

    def _rules(self, doc: Any, by_name: Mapping[str, Column]) -> tuple[Rule, ...]:
        if doc is None:
            return ()
        if not isinstance(doc, list):
            self.err("quality", "must be a list of rules")
            return ()
        rules: list[Rule] = []
        names: set[str] = set()
        allowed = {"name", "type", "column", "columns", "action", "values", "min", "max", "pattern"}
        for i, raw in enumerate(doc):
            r = self.section(raw, f"quality[{i}]", allowed, ("name", "type", "action"))
            name = str(r.get("name", f"rule_{i}"))
            where = f"quality[{i}] ({name})"
            if not re.match(r"^[a-z][a-z0-9_]{0,62}$", name) or name in RESERVED_RULE_NAMES:
                self.err(f"{where}.name", "must be a lower-case identifier other than "
                                          + ", ".join(RESERVED_RULE_NAMES))
            if name in names:
                self.err(where, "duplicate rule name")
            names.add(name)
            rtype = r.get("type")
            if rtype not in RULE_TYPES:
                self.err(f"{where}.type", f"'{rtype}' is not one of {', '.join(RULE_TYPES)}")
            action = r.get("action")
            if action not in ACTIONS:
                self.err(f"{where}.action", f"'{action}' is not one of {', '.join(ACTIONS)}")
            cols = self.names(r.get("columns", r.get("column")), f"{where}.columns")
            if not cols:
                self.err(where, "names no column (use 'column' or 'columns')")
            for col in cols:
                if col not in by_name:
                    self.err(f"{where}.columns", f"'{col}' is not a column")
            if rtype in ("allowed_values", "range", "regex") and len(cols) > 1:
                self.err(f"{where}.columns", f"a {rtype} rule checks exactly one column")
            for key, used_by in (("values", "allowed_values"), ("min", "range"), ("max", "range"),
                                 ("pattern", "regex")):
                if key in r and rtype in RULE_TYPES and rtype != used_by:
                    self.err(f"{where}.{key}", f"only {used_by} rules take it (this rule is {rtype})")
            values: tuple[Any, ...] = ()
            if rtype == "allowed_values":
                v = r.get("values")
                if not isinstance(v, list) or not v:
                    self.err(f"{where}.values", "must be a non-empty list")
                else:
                    values = tuple(v)
                    for col in cols[:1]:
                        if col in by_name and col not in self.untyped:
                            for value in v:
                                problem = _value_problem(value, by_name[col].type)
                                if problem:
                                    self.err(f"{where}.values", f"{value!r}: {problem}")
            lo, hi = r.get("min"), r.get("max")
            if rtype == "range":
                if lo is None and hi is None:
                    self.err(where, "a range rule needs min, max or both")
                for key, v in (("min", lo), ("max", hi)):
                    if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                        self.err(f"{where}.{key}", "must be a number")
                    elif isinstance(v, float) and not math.isfinite(v):
                        self.err(f"{where}.{key}", f"must be a finite number, got {v}")
                    elif isinstance(v, int) and not -(2**63) <= v < 2**63:
                        self.err(f"{where}.{key}", "must fit in a 64-bit integer (write it as a decimal number)")
                if (isinstance(lo, int | float) and isinstance(hi, int | float) and not isinstance(lo, bool)
                        and not isinstance(hi, bool) and lo > hi):
                    self.err(where, f"min {lo} is greater than max {hi}")
                for col in cols:
                    if (col in by_name and col not in self.untyped
                            and by_name[col].type in ("string", "boolean", "date", "timestamp")):
                        self.err(f"{where}.columns", f"'{col}' is {by_name[col].type}; range rules check numeric columns")
            pattern = r.get("pattern")
            if rtype == "regex":
                if pattern is None or pattern == "":
                    self.err(f"{where}.pattern", "is required")
                elif not isinstance(pattern, str):
                    self.err(f"{where}.pattern", f"must be text in quotes, got {type(pattern).__name__}")
                elif not _JAVA_ONLY_REGEX.search(pattern):
                    # Spark matches with Java's regex engine; the job checks the pattern with it
                    # before reading. Here Python's engine catches most mistakes without a JVM,
                    # except in patterns that use Java-only syntax, which only the job can check.
                    try:
                        re.compile(pattern)
                    except re.error as exc:
                        self.err(f"{where}.pattern", f"does not compile: {exc}")
            rules.append(Rule(name=name, type=str(rtype), columns=cols, action=str(action), values=values,
                              min=lo, max=hi, pattern=pattern))
        return tuple(rules)


def _value_problem(value: Any, ctype: str) -> str | None:
    """Why ``value`` cannot be an allowed value of a ``ctype`` column as written (None: it can).

    Every value must convert to the column's type exactly: a value that does not would make the
    rule compare with null and pass every row. Text and dates must be quoted, which also keeps
    YAML from reading ``NO`` as false or ``2024-12-24`` as a date.
    """
    if value is None:
        return "null matches no row; use a not_null rule for missing values"
    if ctype == "string":
        return None if isinstance(value, str) else f"must be quoted text for a string column, got {type(value).__name__}"
    if ctype == "boolean":
        return None if isinstance(value, bool) else "must be true or false for a boolean column"
    if isinstance(value, bool):
        return f"true/false is not a {ctype} value"
    if ctype in _INT_RANGES:
        limit = _INT_RANGES[ctype]
        if not isinstance(value, int):
            return f"must be a whole number for a {ctype} column"
        return None if -limit <= value < limit else f"does not fit in a {ctype} column"
    if ctype in ("float", "double"):
        if not isinstance(value, int | float) or not math.isfinite(value):
            return f"must be a finite number for a {ctype} column"
        return None
    if ctype.startswith("decimal"):
        precision, scale = (int(x) for x in ctype[len("decimal("):-1].split(","))
        try:  # text as Spark casts it (Python's Decimal also takes '1_000', which Spark reads as null)
            number = (decimal.Decimal(str(value)) if isinstance(value, int | float)
                      or (isinstance(value, str) and _DECIMAL_TEXT.match(value)) else None)
        except decimal.InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            return f"must be a number for a {ctype} column"
        exponent = number.as_tuple().exponent
        with decimal.localcontext(decimal.Context(prec=80)):
            if (isinstance(exponent, int) and -exponent > scale
                    and number != number.quantize(decimal.Decimal(1).scaleb(-scale))):
                return f"has more than {scale} decimal places"
        if abs(number) >= decimal.Decimal(10) ** (precision - scale):
            return f"does not fit in {ctype}"
        return None
    if not isinstance(value, str):
        return f"must be quoted ISO text for a {ctype} column, e.g. '2024-12-24'"
    form = _ISO_DATE if ctype == "date" else _ISO_TIMESTAMP
    try:
        if not form.match(value):
            raise ValueError(value)
        dt.datetime.fromisoformat(value)
    except ValueError:
        return f"is not an ISO {ctype} ({'YYYY-MM-DD' if ctype == 'date' else 'YYYY-MM-DD HH:MM[:SS[.ffffff]]'})"
    return None


#: A number written as text that Spark casts to a decimal.
_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

#: The ISO forms Spark casts from text (Python's fromisoformat also takes 20241224 and 2024-W52-2).
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")
