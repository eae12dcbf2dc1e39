"""Pure DataFrame transforms of the ingest: cast, validate, de-duplicate, add lineage, split.

Every check is one bit of a bigint mask (``_lake_mask_<n>``, 62 checks per mask), evaluated by
Spark's generated code; the raw text of a row is kept (packed in one array) only when the row is
rejected, and the readable list of violations is only built for the rows that go to quarantine.

Checks that compare rows with each other (de-duplication and ``unique`` rules) need every row of
a key together. Shuffling all rows for that took a third of an ingest (measured at 5 M rows), so the job
first finds the keys that occur more than once (``repeated_keys``, a pass over the key columns
only) and sends just the rows of those keys to a ``pending`` state; ``resolve_pending`` settles
them afterwards over that small set. ``validate`` without repeated keys applies the windows to
all rows in one go (used when a batch repeats too many keys, and by the unit tests).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark import SparkContext
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ._contract import (
    INGESTED_AT_COL,
    RUN_ID_COL,
    SOURCE_FILE_COL,
    ZONE_AFTER_TIME,
    Column,
    Contract,
    Rule,
    pattern_has_zone,
)

logger = logging.getLogger(__name__)

CORRUPT_COL = "_corrupt_record"
VIOLATIONS_COL = "lake_violations"
RAW_RECORD_COL = "lake_raw_record"
REJECTED_COL = "_lake_rejected"
PENDING_COL = "_lake_pending"
RAW_COL = "_lake_raw"
MASK_PREFIX = "_lake_mask_"
VALID_COL = "lake_valid"
#: Values of ``lake_valid`` in the staged rows (a directory level of the run's output).
VALID, REJECTED, PENDING = "true", "false", "pending"
QUARANTINE_COL = "lake_quarantine"
VIOLATIONS_TYPE = "array<struct<rule:string,action:string,detail:string>>"
BITS_PER_MASK = 62
BLOCKING_ACTIONS = ("reject", "fail")
DUPLICATE_RULE = "duplicate"
MALFORMED_RULE = "malformed"


@dataclass(frozen=True)
class Check:
    """One check a row can fail: the rule name reported, its action, and how to explain it
    (``detail``: a SQL expression of the row's columns, see ``_violations``)."""

    rule: str
    action: str
    detail: str
    condition: SparkColumn | None = None  # None: computed over windows in ``validate``

    @property
    def blocking(self) -> bool:
        return self.action in BLOCKING_ACTIONS


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def typed_name(name: str) -> str:
    """The column that holds contract column ``name`` converted to its type."""
    return f"_typed_{name}"


def _typed(name: str) -> SparkColumn:
    return F.col(_q(typed_name(name)))


def _mask(i: int) -> str:
    return f"{MASK_PREFIX}{i // BITS_PER_MASK}"


def _bit(i: int) -> int:
    return 1 << (i % BITS_PER_MASK)


def is_set(i: int) -> SparkColumn:
    """True when the row failed check number ``i``."""
    return F.col(_mask(i)).bitwiseAND(F.lit(_bit(i))) != 0


def _set_bit(i: int, condition: SparkColumn) -> SparkColumn:
    return F.col(_mask(i)).bitwiseOR(F.when(condition, F.lit(_bit(i))).otherwise(F.lit(0)))


def _text(value: str) -> str:
    """A SQL string literal holding ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _message(*parts: str) -> str:
    """SQL text of a message: ``concat`` of the given SQL expressions."""
    return parts[0] if len(parts) == 1 else f"concat({', '.join(parts)})"


def _shown(name: str) -> str:
    """SQL text of column ``name``'s value quoted for an error message, cut to 200 characters."""
    quote = _text("'")
    return f"concat({quote}, substring(CAST({_q(name)} AS STRING), 1, 200), {quote})"


def _any(conditions: Sequence[SparkColumn]) -> SparkColumn:
    return reduce(lambda a, b: a | b, conditions) if conditions else F.lit(False)


def _all(conditions: Sequence[SparkColumn]) -> SparkColumn:
    return reduce(lambda a, b: a & b, conditions) if conditions else F.lit(True)


def null_markers(df: DataFrame, columns: Sequence[str], markers: Sequence[str]) -> DataFrame:
    """Turn the contract's null markers (``''``, ``'NULL'``, ...) into real nulls in string columns."""
    if not markers:
        return df
    string_cols = {f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType)}
    values = ", ".join(_text(m) for m in markers)
    # SQL text: one call into the JVM per column instead of about ten
    return df.withColumns({
        c: F.expr(f"CASE WHEN {_q(c)} IN ({values}) THEN CAST(NULL AS STRING) ELSE {_q(c)} END")
        for c in columns if c in string_cols
    })


def contract_null_markers(contract: Contract) -> list[str]:
    """The markers ``null_markers`` applies; the CSV reader already reads empty fields as null."""
    return [m for m in contract.format.null_values if m or contract.format.type != "csv"]


#: What Spark's CSV reader puts in place of bytes that are not valid in the file's encoding.
REPLACEMENT_CHAR = "\ufffd"


def _checks_text(col: Column, contract: Contract) -> bool:
    """Whether a string column's text is checked for U+FFFD. The CSV reader does not fail on
    bytes that are not valid in the file's encoding: it replaces them with U+FFFD (JSON Lines
    makes such a record malformed instead). Other types then fail their conversion; a string
    column needs this test, in ``typed_columns``."""
    return col.type == "string" and contract.format.type == "csv"


def as_text(name: str, data_type: T.DataType) -> SparkColumn:
    """A typed column as text: a struct, array or map as its JSON text, bytes decoded as UTF-8
    (a byte sequence that is not valid UTF-8 becomes U+FFFD: Parquet readers refuse a string
    that is not UTF-8), anything else as Spark casts it to a string."""
    col = F.col(_q(name))
    if isinstance(data_type, COMPLEX_TYPES):
        return F.to_json(col)
    if isinstance(data_type, T.BinaryType):
        return F.decode(col, "UTF-8")
    return col if isinstance(data_type, T.StringType) else col.cast("string")


def typed_columns(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """Add ``_typed_<name>``: each contract column converted to its type, null where it cannot be.

    The source columns stay as they arrived (text for CSV and JSON) so that a rejected row keeps
    its raw values. Extra columns admitted by an additive policy are kept as text (``as_text``). A typed
    column the frame has already (``typed_before_union``) is kept.
    """
    types = {f.name: f.dataType for f in df.schema.fields}
    typed: dict[str, SparkColumn] = {}
    for col in contract.columns:
        if typed_name(col.name) not in types:
            typed[typed_name(col.name)] = _converted(col, contract, types.get(col.source_name))
    for name in extra:
        typed[typed_name(name)] = as_text(name, types[name])
    return df.withColumns(typed)


def typed_before_union(df: DataFrame, contract: Contract, sources: Sequence[str]) -> DataFrame:
    """``typed_columns`` for the contract columns read from ``sources`` only, null markers first.

    For Parquet files that hold a column in different types: each file's values are converted
    from their own type before the files are united, and the reader then turns the source column
    into text (the raw value of a rejected row)."""
    types = {f.name: f.dataType for f in df.schema.fields}
    cols = [c for c in contract.columns if c.source_name in sources and c.source_name in types]
    df = null_markers(df, [c.source_name for c in cols], contract_null_markers(contract))
    return df.withColumns({typed_name(c.name): _converted(c, contract, types[c.source_name]) for c in cols})


def _converted_sources(df: DataFrame, contract: Contract) -> set[str]:
    """The source columns that ``typed_before_union`` converted already (null markers included)."""
    return {c.source_name for c in contract.columns if typed_name(c.name) in df.columns}


def _converted(col: Column, contract: Contract, source_type: T.DataType | None) -> SparkColumn:
    """One contract column converted from its source column of ``source_type`` (None: absent)."""
    if source_type is None:
        value = F.lit(None).cast(col.type)
    elif col.type in ("date", "timestamp") and col.format and not isinstance(source_type, _DATETIME):
        value = parse_datetime(col.source_name, col.type, col.format)  # text, or a number such as 20260102
    elif _checks_text(col, contract):
        text = F.col(_q(col.source_name))
        value = F.when(~text.contains(REPLACEMENT_CHAR), text)
    else:
        value = exact_cast(col.source_name, source_type, col.type)
    if col.type == "timestamp" and source_type is not None and contract.format.time_zone != "UTC":
        value = local_to_utc(value, col, source_type, contract.format.time_zone)
    if _string_partition(col, contract):
        value = F.when(partition_value_fits(col.name, value), value)
    return value


def local_to_utc(value: SparkColumn, col: Column, source_type: T.DataType, time_zone: str) -> SparkColumn:
    """A converted timestamp read as the local time of ``time_zone`` where its source names no
    instant itself: text or a number read with a pattern that has no zone (``pattern_has_zone``),
    ISO text without a zone after its time (``ZONE_AFTER_TIME``), and Parquet's timestamps
    without a zone and dates. Spark read those as UTC times, so they are moved by the zone's
    offset at that time (``to_utc_timestamp``); a typed instant (Parquet's timestamps adjusted to
    UTC) is kept as it is."""
    local = F.to_utc_timestamp(value, time_zone)
    if isinstance(source_type, (T.TimestampNTZType, T.DateType)):
        return local
    if isinstance(source_type, T.TimestampType):
        return value
    if col.format:  # text, or a number such as 20260705103000 (see _converted)
        return value if pattern_has_zone(col.format) else local
    if isinstance(source_type, T.StringType):
        return F.when(F.col(_q(col.source_name)).rlike(ZONE_AFTER_TIME), value).otherwise(local)
    return value  # a number without a pattern: no timestamp (see exact_cast)


def _string_partition(col: Column, contract: Contract) -> bool:
    """Whether a column's values become directory names that ``partition_value_fits`` checks."""
    return col.type == "string" and col.name in contract.partition_by


#: Characters Spark percent-encodes in a partition directory name (Hive's escaping).
_ESCAPED_IN_PATHS = r"""[\x01-\x1F"#%'*/:=?\\\x7F{\[\]^]"""
#: The longest file or directory name of common file systems, in bytes.
MAX_NAME_BYTES = 255


#: The directory name Hive and Spark give a null partition value, and read back as null.
HIVE_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def partition_value_fits(name: str, value: SparkColumn) -> SparkColumn:
    """Whether a string partition value can be written: neither empty nor Hive's null directory
    name (Spark writes '' as that directory, and readers take both as null) and not so long that
    its directory name, ``name=value`` with Spark's escaping, exceeds ``MAX_NAME_BYTES``; such a
    value used to fail the write, and so every run of the dataset."""
    escaped = F.octet_length(value) + 2 * F.octet_length(
        F.regexp_replace(value, f"[^{_ESCAPED_IN_PATHS[1:-1]}]", ""))
    return ~value.isin("", HIVE_NULL_PARTITION) & (escaped <= MAX_NAME_BYTES - len(name.encode()) - 1)


#: Nested Parquet types: written as JSON text where a string is wanted.
COMPLEX_TYPES = (T.StructType, T.ArrayType, T.MapType)
_DATETIME = (T.DateType, T.TimestampType, T.TimestampNTZType)
_NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double")


def _numeric(type_name: str) -> bool:
    return type_name in _NUMERIC_TYPES or type_name.startswith("decimal")


def _epoch_cast(source_type: T.DataType, type_name: str) -> bool:
    """Whether Spark casts between a number and a timestamp as seconds since 1970: it would read
    2026 as 00:33:46 on 1970-01-01, where the same text from CSV is the year 2026."""
    return ((isinstance(source_type, T.NumericType) and type_name == "timestamp")
            or (isinstance(source_type, T.TimestampType) and _numeric(type_name)))


def try_cast_refused(source_type: T.DataType, type_name: str) -> bool:
    """Whether Spark 3.5 refuses ``try_cast`` from ``source_type`` to ``type_name`` when it
    analyses the plan (the whole run would fail), as it does for a number to a date or a binary
    to a number. A test compares this with Spark for every pair of the contract's types."""
    if isinstance(source_type, T.BinaryType):
        return type_name != "string"
    if type_name == "date":
        return isinstance(source_type, (T.BooleanType, T.NumericType))
    if type_name == "timestamp":
        return isinstance(source_type, T.BooleanType)
    if type_name == "boolean":
        return isinstance(source_type, _DATETIME)
    if _numeric(type_name):
        return isinstance(source_type, (T.DateType, T.TimestampNTZType))
    return False


#: The text a date or timestamp column without a ``format`` reads: an ISO date, for a timestamp
#: with an optional time part (which Spark's cast then reads: fractions, zones).
_ISO_TEXT = {"date": r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$",
             "timestamp": r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$"}


def exact_cast(source: str, source_type: T.DataType, type_name: str) -> SparkColumn:
    """A value of a typed source (Parquet) converted to ``type_name``; null where that loses
    information, so that the type check rejects the row.

    Spark's cast truncates and widens quietly: ``2.999`` (double) becomes bigint ``2``, a
    timestamp becomes the date of its day, an int ``2`` becomes ``true``, a bigint above 2^53
    becomes a nearby double. Here a converted value is kept only when converting it back gives the
    value read. Text keeps the text conversion (as for CSV), decimals keep Spark's rounding to
    their scale and floats and doubles the nearest value (as from text; see the README), and a
    struct, array or map is read into a string column as its JSON text and into no other type. A
    pair Spark cannot cast at all (a binary to a number, a boolean to a date) is converted from
    the value's text.
    """
    src = F.col(_q(source))
    if source_type.simpleString() == type_name:
        return src
    if isinstance(source_type, COMPLEX_TYPES):
        return F.to_json(src) if type_name == "string" else F.lit(None).cast(type_name)
    if isinstance(source_type, T.BinaryType) and type_name == "string":
        # kept only when valid UTF-8: as_text replaces what is not, and encoding it then differs
        text = as_text(source, source_type)
        return F.when(F.encode(text, "UTF-8") == src, text)
    if try_cast_refused(source_type, type_name) or _epoch_cast(source_type, type_name):
        # read as the text it stands for, as from CSV
        return F.expr(f"try_cast(CAST({_q(source)} AS STRING) AS {type_name})")
    converted = F.expr(f"try_cast({_q(source)} AS {type_name})")
    if type_name in _ISO_TEXT and isinstance(source_type, T.StringType):
        # Spark's cast also reads '2026' and '2026-7', and a date from '2026-01-05 anything'
        return F.when(src.rlike(_ISO_TEXT[type_name]), converted)
    if isinstance(source_type, T.StringType) or type_name.startswith("decimal"):
        return converted
    if type_name in ("float", "double") and isinstance(source_type, T.NumericType):
        # a binary fraction is rounded to the nearest float, as from text; only overflow is lost
        infinite = [F.lit(float("inf")), F.lit(float("-inf"))]
        return F.when(~converted.isin(*infinite) | src.cast("double").isin(*infinite), converted)
    return F.when(converted.cast(source_type) == src, converted)


#: ISO patterns that Spark's cast also reads, with the separators of their exact form
#: (1-based byte position -> character). The cast is about twice as fast as the pattern
#: formatter (measured: three such columns of 1 M rows in 0.27 s against 0.52 s).
_ISO_SHAPES = {
    "yyyy-MM-dd": {5: "-", 8: "-"},
    "yyyy-MM-dd HH:mm:ss": {5: "-", 8: "-", 11: " ", 14: ":", 17: ":"},
    "yyyy-MM-dd'T'HH:mm:ss": {5: "-", 8: "-", 11: "T", 14: ":", 17: ":"},
}


def parse_datetime(source: str, type_name: str, pattern: str) -> SparkColumn:
    """The text column ``source`` read as a date or timestamp with a pattern; null when the text
    does not follow it.

    For the ISO patterns of ``_ISO_SHAPES``, text in the pattern's exact form (its length, its
    separators, digits at the end) is read by Spark's cast, and any other text by the pattern
    formatter, so the result is always the formatter's. The cast alone is more lenient: it also
    takes '2026-1-5', a zone or fraction after the seconds ('... 12:00:0Z') and trailing spaces,
    which all differ from the exact form in the length, a separator or the last two characters.
    The bytes are compared as binary because a substring of a string counts its characters from
    the start on every call (three times slower here).
    """
    text = F.col(_q(source)).cast("string")
    by_pattern = F.try_to_timestamp(text, F.lit(pattern)).cast(type_name)
    separators = _ISO_SHAPES.get(pattern)
    if separators is None:
        return by_pattern
    length = max(separators) + 2
    raw = text.cast("binary")

    def byte(pos: int) -> SparkColumn:
        return F.substring(raw, pos, 1)

    exact = F.octet_length(text) == length
    for pos, sep in separators.items():
        exact = exact & (byte(pos) == F.lit(bytearray(sep.encode())))
    for pos in (length - 1, length):
        exact = exact & byte(pos).between(F.lit(bytearray(b"0")), F.lit(bytearray(b"9")))
    # A cast to date ignores what follows the day, so a date read with a time in its pattern is
    # cast to a timestamp first, which checks the time as the formatter does.
    through = "timestamp" if type_name == "date" and length > 10 else type_name
    cast = F.expr(f"try_cast(CAST({_q(source)} AS STRING) AS {through})").cast(type_name)
    return F.when(exact, cast).otherwise(by_pattern)


#: Recently built check lists, by contract and Spark context: building the Column expressions
#: takes a noticeable fraction of a second (hundreds of calls into the JVM), and a run needs them
#: several times. The contract is kept in the entry so that its id stays unique.
_CHECKS_CACHE: OrderedDict[tuple[int, int], tuple[Contract, list[Check]]] = OrderedDict()


def checks(contract: Contract) -> list[Check]:
    """Every check of a contract in a fixed order: types, not-null, rules, duplicates, malformed.

    The position of a check is its bit in the masks.
    """
    key = (id(contract), id(SparkContext._active_spark_context))
    if key in _CHECKS_CACHE:
        _CHECKS_CACHE.move_to_end(key)
        return list(_CHECKS_CACHE[key][1])
    built = _build_checks(contract)
    _CHECKS_CACHE[key] = (contract, built)
    while len(_CHECKS_CACHE) > 16:
        _CHECKS_CACHE.popitem(last=False)
    return list(built)


def _build_checks(contract: Contract) -> list[Check]:
    out: list[Check] = []
    for col in contract.columns:
        src = F.col(_q(col.source_name))
        value = _typed(col.name)
        pattern = f" '{col.format}'" if col.format else ""
        why = f": bytes that are not valid {contract.format.encoding}" if _checks_text(col, contract) else ""
        if _string_partition(col, contract):
            limit = (f"an empty partition value, {HIVE_NULL_PARTITION} (read back as null), or one longer than "
                     f"its directory name allows ({MAX_NAME_BYTES} bytes)")
            why = f"{why}, or {limit}" if why else f": {limit}"
        failed = value.isNull()
        if col.type in ("float", "double"):
            # '1e400' reads as Infinity: overflow is lost information, unlike text that says
            # infinity. Checked here, on the converted value, rather than in the conversion: a
            # conversion that tests its own result costs about 15 % of the main pass (measured).
            failed = failed | (value.isin(F.lit(float("inf")), F.lit(float("-inf")))
                               & ~F.lower(F.trim(src.cast("string"))).rlike("^[+-]?inf(inity)?$"))
        out.append(Check(f"type:{col.name}", "reject",
                         _message(_text(f"cannot read {col.source_name}="), _shown(col.source_name),
                                  _text(f" as {col.type}{pattern}{why}")),
                         src.isNotNull() & failed))
        if not col.nullable:
            out.append(Check(f"not_null:{col.name}", "reject", _text(f"{col.source_name} is missing"),
                             src.isNull()))
    for rule in contract.rules:
        out.append(_rule_check(rule, contract))
    if contract.deduplicate and contract.primary_key:
        keys = ", ".join(contract.primary_key)
        kept = (f"the latest by {', '.join(contract.dedupe_order_by)}, then by file name" if contract.dedupe_order_by
                else "the one of the file whose name sorts last")
        out.append(Check(DUPLICATE_RULE, "reject", _text(f"another row with the same {keys} was kept ({kept})")))
    out.append(Check(MALFORMED_RULE, "reject", _text("the record could not be parsed"),
                     F.col(CORRUPT_COL).isNotNull()))
    return out


def _rule_check(rule: Rule, contract: Contract) -> Check:
    if rule.type == "unique":
        return Check(rule.name, rule.action, _text(f"{', '.join(rule.columns)} is not unique in this batch"))
    col = contract.column(rule.columns[0])
    value = _typed(col.name)
    typed_col = typed_name(col.name)
    if rule.type == "not_null":
        # the source value (null markers made null): a value present but not convertible fails its
        # type check only, which names the cause
        return Check(rule.name, rule.action, _text(f"null in {', '.join(rule.columns)}"),
                     _any([F.col(_q(contract.column(c).source_name)).isNull() for c in rule.columns]))
    if rule.type == "allowed_values":
        # from text, as Spark casts it: a Python int beyond 64 bits is no literal Spark takes
        allowed = [F.lit(str(v)).cast(col.type) for v in rule.values]
        if col.type == "timestamp" and contract.format.time_zone != "UTC":  # local times, as the data's
            allowed = [F.to_utc_timestamp(a, contract.format.time_zone) for a in allowed]
        return Check(rule.name, rule.action,
                     _message(_text(f"{col.name}="), _shown(typed_col), _text(" is not an allowed value")),
                     value.isNotNull() & ~value.isin(allowed))
    if rule.type == "range":
        bounds = []

        def bound(v: int | float) -> SparkColumn:  # a float column compares with the bound as a float
            return F.lit(v).cast("float") if col.type == "float" else F.lit(v)

        if rule.min is not None:
            bounds.append(value < bound(rule.min))
        if rule.max is not None:
            bounds.append(value > bound(rule.max))
        shown = f"[{'' if rule.min is None else rule.min}, {'' if rule.max is None else rule.max}]"
        return Check(rule.name, rule.action,
                     _message(_text(f"{col.name}="), f"CAST({_q(typed_col)} AS STRING)", _text(f" outside {shown}")),
                     value.isNotNull() & _any(bounds))
    if rule.type == "regex":
        return Check(rule.name, rule.action,
                     _message(_text(f"{col.name}="), _shown(typed_col), _text(f" does not match {rule.pattern}")),
                     value.isNotNull() & ~value.rlike(str(rule.pattern)))
    raise ValueError(f"unknown rule type {rule.type}")


def row_flags(df: DataFrame, all_checks: Sequence[Check]) -> DataFrame:
    """Set the bit of every row-level check a row fails. A record the reader could not parse
    fails ``malformed`` only: checks on its partial values would repeat the same cause.

    Whether the record parsed is tested once per mask, not once per check, which keeps the
    generated code of this stage about 1 KB smaller (measured: 10.5 KB to 9.4 KB of bytecode).
    """
    checked: dict[str, SparkColumn] = {}  # the bits of a parsed row
    unparsed: dict[str, int] = {}  # the bits of a record the reader could not parse
    for i, check in enumerate(all_checks):
        checked.setdefault(_mask(i), F.lit(0).cast("bigint"))
        unparsed.setdefault(_mask(i), 0)
        if check.rule == MALFORMED_RULE:
            unparsed[_mask(i)] |= _bit(i)
        elif check.condition is not None:
            checked[_mask(i)] = checked[_mask(i)].bitwiseOR(F.when(check.condition, F.lit(_bit(i))).otherwise(F.lit(0)))
    parsed = F.col(CORRUPT_COL).isNull()
    return df.withColumns({m: F.when(parsed, bits).otherwise(F.lit(unparsed[m]).cast("bigint"))
                           for m, bits in checked.items()})


def _rejected(all_checks: Sequence[Check]) -> SparkColumn:
    blocking: dict[str, int] = {}
    for i, c in enumerate(all_checks):
        if c.blocking:
            blocking[_mask(i)] = blocking.get(_mask(i), 0) | _bit(i)
    return _any([F.col(m).bitwiseAND(F.lit(bits)) != 0 for m, bits in blocking.items()])


def deduplicate(df: DataFrame, contract: Contract, all_checks: Sequence[Check]) -> DataFrame:
    """Keep one row per primary key among the valid rows, the latest by ``order_by``.

    The others are not dropped: their ``duplicate`` bit sends them to quarantine. Rejected rows
    take no part, so a bad newer row never displaces a good older one.
    """
    idx = next((i for i, c in enumerate(all_checks) if c.rule == DUPLICATE_RULE), None)
    if idx is None:
        return df
    rejected = _rejected(all_checks)
    order = [_typed(c).desc_nulls_last() for c in contract.dedupe_order_by]
    order += [F.col(SOURCE_FILE_COL).desc(), F.xxhash64(*[_typed(c.name) for c in contract.columns]).desc()]
    window = Window.partitionBy(rejected, *[_typed(c) for c in contract.primary_key]).orderBy(*order)
    return df.withColumn(_mask(idx), _set_bit(idx, ~rejected & (F.row_number().over(window) > 1)))


def check_unique(df: DataFrame, contract: Contract, all_checks: Sequence[Check]) -> DataFrame:
    """Flag every row of a key that appears more than once among the valid rows. A row with a
    null in the key is never a repeat, as in SQL's UNIQUE (a null equals nothing)."""
    rules = {r.name: r for r in contract.rules if r.type == "unique"}
    out = df
    for i, check in enumerate(all_checks):
        if check.rule in rules:
            rejected = _rejected(all_checks)
            columns = rules[check.rule].columns
            complete = _all([_typed(c).isNotNull() for c in columns])
            window = Window.partitionBy(rejected, *[_typed(c) for c in columns])
            out = out.withColumn(_mask(i), _set_bit(i, ~rejected & complete & (F.count(F.lit(1)).over(window) > 1)))
    return out


def raw_columns(contract: Contract, extra: Sequence[str] = ()) -> list[str]:
    """The raw columns packed for rejected rows, in order."""
    return [c.source_name for c in contract.columns] + list(extra) + [CORRUPT_COL]


def add_lineage(df: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Stamp every row with the run and the ingest time (the source file is set in ``validate``)."""
    return df.withColumns({RUN_ID_COL: F.lit(run_id), INGESTED_AT_COL: run_constant(F.lit(ingested_at).cast("timestamp"))})


def run_constant(value: SparkColumn) -> SparkColumn:
    """A constant that changes from run to run, kept out of Spark's generated code.

    Spark writes a timestamp (or number) literal into the Java source of a stage, and caches
    compiled classes by their source: every run would compile the main stage again (two large
    classes, 0.3 to 0.8 s each, and the JIT starts on them cold). A string or array literal is
    passed to the code as a reference instead. So the value goes into a one-element array, which
    constant folding keeps as such a literal, and is taken out again with an index Spark cannot
    fold (the partition id times zero, plus one): a few instructions per row, and a contract's
    classes are compiled once in a session that runs the job again (the tests, say) instead of
    on every run."""
    return F.element_at(F.array(value), F.spark_partition_id() * 0 + 1)


def window_key_sets(contract: Contract) -> list[tuple[str, ...]]:
    """The column sets whose checks compare rows: the primary key when de-duplicating, and the
    columns of each ``unique`` rule."""
    sets: list[tuple[str, ...]] = []
    if contract.deduplicate and contract.primary_key:
        sets.append(tuple(contract.primary_key))
    for rule in contract.rules:
        if rule.type == "unique" and tuple(rule.columns) not in sets:
            sets.append(tuple(rule.columns))
    return sets


def repeated_keys(df: DataFrame, contract: Contract, keys: Sequence[str]) -> DataFrame:
    """The values of ``keys`` (as ``_typed_<name>``) that occur in more than one row of ``df``.

    ``df`` holds the key columns as read (the job passes ``read_key_columns``, which may add a
    header line's text as one more row). The keys are converted exactly as ``validate`` converts
    them, so every key shared by two valid rows is in the result; rows that ``validate`` rejects,
    and header lines, can only add keys that are not really shared, and a rejected row is never
    pending.
    """
    cols = [contract.column(k) for k in keys]
    present = [c.source_name for c in cols if c.source_name in df.columns]
    made = [typed_name(k) for k in keys if typed_name(k) in df.columns]  # by typed_before_union
    done = _converted_sources(df, contract)
    out = null_markers(df.select(*[F.col(_q(n)) for n in present + made]), [n for n in present if n not in done],
                       contract_null_markers(contract))
    names = [typed_name(k) for k in keys]
    out = typed_columns(out, contract).select(*[F.col(_q(n)) for n in names])
    return out.groupBy(*names).count().filter(F.col("count") > 1).select(*names)


def _mark_pending(df: DataFrame, repeated: Mapping[tuple[str, ...], DataFrame],
                  all_checks: Sequence[Check]) -> DataFrame:
    """``_lake_pending``: a row that passed the row checks and whose key is repeated in the batch.

    The repeated keys are few, so each set is broadcast and matched (null-safe) without moving rows.
    """
    out, hits = df, []
    for i, (keys, keys_df) in enumerate(repeated.items()):
        aliases = [f"_lake_k{i}_{j}" for j in range(len(keys))]
        right = F.broadcast(keys_df.select(*[_typed(k).alias(a) for k, a in zip(keys, aliases, strict=True)],
                                           F.lit(True).alias(f"_lake_hit{i}")))
        on = reduce(lambda a, b: a & b, [_typed(k).eqNullSafe(F.col(a)) for k, a in zip(keys, aliases, strict=True)])
        out = out.join(right, on=on, how="left").drop(*aliases)
        hits.append(f"_lake_hit{i}")
    pending = ~_rejected(all_checks) & _any([F.col(h).isNotNull() for h in hits])
    return out.withColumn(PENDING_COL, pending).drop(*hits)


def validate(df: DataFrame, contract: Contract, run_id: str, ingested_at: dt.datetime,
             extra: Sequence[str] = (), repeated: Mapping[tuple[str, ...], DataFrame] | None = None) -> DataFrame:
    """The row pipeline: null markers, types, rules, de-duplication, lineage.

    Returns one DataFrame with the typed values, the check masks, ``_lake_rejected``,
    ``_lake_pending`` and, for rows rejected by a row-level check, their raw text; ``staged``,
    ``curated`` and ``quarantine`` select the outputs from it.

    ``repeated`` maps each of ``window_key_sets(contract)`` to its ``repeated_keys``: the rows of
    those keys become pending instead of going through the windows here (the job's way). Without
    it the windows run over every row and no row is pending.

    A frame straight from the reader has no source-file column: it is added here with
    ``input_file_name()``, after the conversions and checks and before anything that joins or
    moves rows (where the name of the file being read is no longer known). Carried from the scan
    instead, as ``_metadata.file_path``, it is one column that the per-column projections only
    pass on, which stops Spark from splitting their generated code into methods small enough for
    the JIT; the stage then runs without whole-stage code generation. Measured at 1 M rows: the
    main pass used about a fifth less CPU this way.
    """
    raw_cols = raw_columns(contract, extra)
    out = df.withColumns({c: F.lit(None).cast("string") for c in raw_cols if c not in df.columns})
    all_checks = checks(contract)
    done = _converted_sources(out, contract)
    out = null_markers(out, [c for c in raw_cols[:-1] if c not in done], contract_null_markers(contract))
    out = typed_columns(out, contract, extra)
    out = row_flags(out, all_checks)
    types = {f.name: f.dataType for f in out.schema.fields}  # analysed with the frame already: about 1 ms
    packed = F.when(_rejected(all_checks), F.array(*[as_text(c, types[c]) for c in raw_cols]))
    out = out.withColumn(RAW_COL, packed).drop(*raw_cols)
    if SOURCE_FILE_COL not in out.columns:
        out = out.withColumn(SOURCE_FILE_COL, F.input_file_name())
    if repeated is None:
        out = check_unique(deduplicate(out, contract, all_checks), contract, all_checks)
    out = _mark_pending(out, repeated, all_checks) if repeated else out.withColumn(PENDING_COL, F.lit(False))
    out = add_lineage(out, run_id, ingested_at)
    return out.withColumn(REJECTED_COL, _rejected(all_checks))


def _violations(all_checks: Sequence[Check]) -> SparkColumn:
    """The readable list of the checks a row failed: (rule, action, detail) structs.

    Built with ``concat`` rather than ``array_compact`` (a lambda function), which would take the
    whole projection out of Spark's generated code; and as SQL text, parsed in one call into the
    JVM (built from Column objects it took over a thousand calls for a 22-column contract).
    """
    none = f"CAST(array() AS {VIOLATIONS_TYPE})"
    branches = [
        f"CASE WHEN ({_q(_mask(i))} & {_bit(i)}L) != 0 THEN array(named_struct("
        f"'rule', {_text(all_checks[i].rule)}, 'action', {_text(all_checks[i].action)}, "
        f"'detail', CAST({all_checks[i].detail} AS STRING))) ELSE {none} END"
        for i in range(len(all_checks))
    ]
    return F.expr(f"concat({', '.join([none, *branches])})")


def _masks(all_checks: Sequence[Check]) -> list[str]:
    """The names of the mask columns of a check list, in order."""
    return list(dict.fromkeys(_mask(i) for i in range(len(all_checks))))


def _payload(contract: Contract, raw: SparkColumn) -> SparkColumn:
    """What a rejected or pending row carries in ``lake_quarantine`` (see ``staged``)."""
    partition = F.array(*[_typed(p).cast("string") for p in contract.partition_by]).cast("array<string>")
    masks = F.array(*[F.col(m) for m in _masks(checks(contract))])
    return F.struct(raw.alias("raw"), partition.alias("partition"), masks.alias("masks"))


def staged(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """All outputs in one row set, so that one Spark pass writes them.

    Every row has the curated columns (contract names and types, new columns, lineage),
    ``lake_valid`` (``'true'``, ``'false'`` for a rejected row, ``'pending'`` for a row whose key
    is repeated) and ``lake_quarantine``: null for a valid row; otherwise a struct of the row's
    text as it arrived (``raw``: its values in contract order, then the unparsed record; for a
    rejected row only), its partition values as text (``partition``) and the bits of the checks
    it failed (``masks``).

    The readable reasons are not built here but by ``quarantine_rows``, for the few rows that go
    to quarantine. Built here, for every row, their code made this stage's generated method
    larger than the JIT compiles (17 KB of bytecode for the benchmark's 22 columns; 2 KB
    without), and Spark then ran the stage without whole-stage code generation (measured at
    5 M rows: about 4 % more CPU in the main pass).
    """
    packed, rejected, pending = F.col(RAW_COL), F.col(REJECTED_COL), F.col(PENDING_COL)
    payload = F.when(rejected | pending, _payload(contract, packed))
    state = F.when(rejected, F.lit(REJECTED)).when(pending, F.lit(PENDING)).otherwise(F.lit(VALID))
    # Rejected and pending rows leave their partition values null (they are in the payload): they
    # are few, and one file per task is much cheaper than one per task and partition value.
    cols = [(F.when(~rejected & ~pending, _typed(c.name)) if c.name in contract.partition_by else _typed(c.name))
            .alias(c.name) for c in contract.columns] + [_typed(e).alias(e) for e in extra]
    cols += [F.col(SOURCE_FILE_COL), F.col(INGESTED_AT_COL), F.col(RUN_ID_COL), state.alias(VALID_COL),
             payload.alias(QUARANTINE_COL)]
    return df.select(*cols)


def _restored(staged_df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """Staged rows with their checks' inputs back: ``_typed_<name>`` for every column (partition
    values from the payload), the masks, and the text of each source column (as it arrived for
    a row rejected in the main pass, otherwise the converted value as text)."""
    q = F.col(QUARANTINE_COL)
    parts = list(contract.partition_by)
    typed = {typed_name(c.name): q["partition"][parts.index(c.name)].cast(c.type) if c.name in parts
             else F.col(_q(c.name)) for c in contract.columns}
    typed |= {typed_name(e): F.col(_q(e)) for e in extra}
    sources = raw_columns(contract, extra)[:-1]  # the record is the last of the raw text
    raw = q["raw"]
    text = {s: F.when(raw.isNotNull(), raw[i]).otherwise(t.cast("string"))
            for i, (s, t) in enumerate(zip(sources, typed.values(), strict=True))}
    all_checks = checks(contract)
    masks = {m: q["masks"][k] for k, m in enumerate(_masks(all_checks))}
    keep = [c for c in staged_df.columns if c not in {c.name for c in contract.columns} | set(extra)]
    return staged_df.select(*[F.col(_q(c)) for c in keep], *[v.alias(k) for k, v in {**typed, **text, **masks}.items()],
                            raw[len(sources)].alias(CORRUPT_COL))


def resolve_pending(pending: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """Settle pending rows (staged rows read back): de-duplicate and apply the ``unique`` rules.

    Every row of a repeated key that passed the row checks is pending, so the windows here see
    the same rows as they would over the whole batch. Returns the rows with the same columns,
    ``lake_valid`` now ``'true'`` or ``'false'``; a rejected row keeps the bits of its earlier
    warnings with those of the checks it failed here.
    """
    all_checks = checks(contract)
    names = [c.name for c in contract.columns] + list(extra)
    out = _restored(pending, contract, extra)
    out = check_unique(deduplicate(out, contract, all_checks), contract, all_checks)
    window_checks = [i for i, c in enumerate(all_checks) if c.condition is None]
    warned_before = _any([is_set(i) for i, c in enumerate(all_checks) if c.condition is not None and not c.blocking])
    rejected = _rejected(all_checks)
    payload = F.when(rejected, _payload(contract, F.lit(None).cast("array<string>")))
    state = F.when(rejected, F.lit(REJECTED)).otherwise(F.lit(VALID))
    metrics = _window_metrics(all_checks, window_checks, warned_before)
    values = {n: (F.when(~rejected, _typed(n)) if n in contract.partition_by else _typed(n)) for n in names}
    out = out.withColumns({**values, VALID_COL: state, QUARANTINE_COL: payload, **metrics})
    cols = [c for c in pending.columns if c != VALID_COL] + [VALID_COL]
    return out.select(*cols, *metrics)


def _window_metrics(all_checks: Sequence[Check], window_checks: Sequence[int],
                    warned_before: SparkColumn) -> dict[str, SparkColumn]:
    """Per-row indicators that ``pending_metrics`` sums."""
    def actions(action: str) -> SparkColumn:
        return _any([is_set(i) for i in window_checks if all_checks[i].action == action])

    out = {"_lake_m_rejected": _rejected(all_checks),
           "_lake_m_failing": actions("fail"),
           # a row with earlier warnings was already counted as warned
           "_lake_m_warned": actions("warn") & ~warned_before}
    out |= {f"_lake_m_rule{i}": is_set(i) for i in window_checks if not all_checks[i].blocking}
    return out


def pending_metrics(resolved: DataFrame, contract: Contract) -> list[SparkColumn]:
    """What ``resolve_pending`` adds to the run's counts, for an Observation on its output (the
    blocking rules are counted by ``quarantine_metrics``, as in the main pass)."""
    all_checks = checks(contract)
    metrics = [_count_if(F.col("_lake_m_rejected")).alias("rows_quarantined"),
               _count_if(F.col("_lake_m_failing")).alias("rows_failing"),
               _count_if(F.col("_lake_m_warned")).alias("rows_warned")]
    metrics += [_count_if(F.col(f"_lake_m_rule{i}")).alias(f"rule:{c.rule}") for i, c in enumerate(all_checks)
                if c.condition is None and not c.blocking]
    return metrics


def drop_metric_columns(df: DataFrame) -> DataFrame:
    return df.drop(*[c for c in df.columns if c.startswith("_lake_m_")])


def quarantine_rows(staged_df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """The quarantine table's rows from staged rejected rows: text values, record, violations."""
    fmt = contract.format
    restored = _restored(staged_df.filter(F.col(VALID_COL) == F.lit(REJECTED)), contract, extra)
    sources = raw_columns(contract, extra)[:-1]
    names = [c.name for c in contract.columns] + list(extra)
    # A record the JSON reader could not parse keeps the line's bytes as they are: in the file's
    # encoding, and maybe not valid in it. Parquet readers refuse a string that is not UTF-8, so
    # the bytes are decoded here (what is not valid becomes U+FFFD). The CSV reader decodes.
    encoding = fmt.encoding if fmt.type == "jsonl" else "UTF-8"
    cols = [F.col(_q(s)).alias(n) for s, n in zip(sources, names, strict=True)]
    cols += [F.decode(F.col(CORRUPT_COL).cast("binary"), encoding).alias(RAW_RECORD_COL),
             _violations(checks(contract)).alias(VIOLATIONS_COL),
             F.col(SOURCE_FILE_COL), F.col(INGESTED_AT_COL), F.col(RUN_ID_COL)]
    return restored.select(*cols)


def curated(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """The rows that passed, with contract names and types, new columns and lineage."""
    return staged(df, contract, extra).filter(F.col(VALID_COL) == F.lit(VALID)).drop(VALID_COL, QUARANTINE_COL)


def quarantine(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """The rejected rows as the quarantine table holds them."""
    return quarantine_rows(staged(df, contract, extra), contract, extra)


def _count_if(cond: SparkColumn) -> SparkColumn:
    return F.sum(F.when(cond, 1).otherwise(0))


def observed_metrics(df: DataFrame, contract: Contract) -> list[SparkColumn]:
    """Aggregates for Spark's Observation: collected in the same pass that writes the data."""
    all_checks = list(enumerate(checks(contract)))
    metrics = [
        F.count(F.lit(1)).alias("rows_read"),
        _count_if(F.col(REJECTED_COL)).alias("rows_quarantined"),
        _count_if(F.col(PENDING_COL)).alias("rows_pending"),
        _count_if(_any([is_set(i) for i, c in all_checks if c.action == "fail"])).alias("rows_failing"),
        _count_if(_any([is_set(i) for i, c in all_checks if c.action == "warn"])).alias("rows_warned"),
    ]
    # Per-rule counts of the warnings only: a row that breaks a blocking rule is quarantined, and
    # ``quarantine_metrics`` counts those from the few quarantined rows instead of every row here.
    metrics += [_count_if(is_set(i)).alias(f"rule:{c.rule}") for i, c in all_checks if not c.blocking]
    return metrics


def quarantine_metrics(contract: Contract) -> list[SparkColumn]:
    """Per-rule counts of the blocking rules, over the quarantine rows (``quarantine_rows``)."""
    # The rules of a row's violations as one array, tested with array_contains: a lambda
    # (``exists``) per rule makes dozens of calls into the JVM for each rule while the plan is built.
    rules = F.col(VIOLATIONS_COL)["rule"]
    return [_count_if(F.array_contains(rules, c.rule)).alias(f"rule:{c.rule}") for c in checks(contract) if c.blocking]


def rule_names(contract: Contract) -> list[str]:
    """Every rule a row can break, implicit ones (types, not-null, duplicates, malformed) included."""
    return [c.rule for c in checks(contract)]
