"""Pure DataFrame transforms of the ingest: cast, validate, de-duplicate, add lineage, split.

Every check becomes one boolean column (``_chk_<n>``), evaluated by Spark's generated code; the
readable list of violations is only built for the rows that go to quarantine.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ._contract import INGESTED_AT_COL, RUN_ID_COL, SOURCE_FILE_COL, Contract, Rule

logger = logging.getLogger(__name__)

CORRUPT_COL = "_corrupt_record"
VIOLATIONS_COL = "lake_violations"
RAW_RECORD_COL = "lake_raw_record"
REJECTED_COL = "_lake_rejected"
BLOCKING_ACTIONS = ("reject", "fail")
DUPLICATE_RULE = "duplicate"
MALFORMED_RULE = "malformed"


@dataclass(frozen=True)
class Check:
    """One check a row can fail: the rule name reported, its action, and how to explain it."""

    rule: str
    action: str
    detail: SparkColumn
    condition: SparkColumn | None = None  # None: computed over windows in ``validate``

    @property
    def blocking(self) -> bool:
        return self.action in BLOCKING_ACTIONS


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _typed(name: str) -> SparkColumn:
    return F.col(_q(f"_typed_{name}"))


def _flag(i: int) -> str:
    return f"_chk_{i}"


def _shown(col: SparkColumn) -> SparkColumn:
    """A value quoted for an error message, cut to 200 characters."""
    return F.concat(F.lit("'"), F.substring(col.cast("string"), 1, 200), F.lit("'"))


def _any(conditions: Sequence[SparkColumn]) -> SparkColumn:
    return reduce(lambda a, b: a | b, conditions) if conditions else F.lit(False)


def null_markers(df: DataFrame, columns: Sequence[str], markers: Sequence[str]) -> DataFrame:
    """Turn the contract's null markers (``''``, ``'NULL'``, ...) into real nulls in string columns."""
    if not markers:
        return df
    string_cols = {f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType)}
    values = list(markers)
    return df.withColumns({
        c: F.when(F.col(_q(c)).isin(values), F.lit(None).cast("string")).otherwise(F.col(_q(c)))
        for c in columns if c in string_cols
    })


def typed_columns(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """Add ``_typed_<name>``: each contract column converted to its type, null where it cannot be.

    The source columns stay as they arrived (text for CSV and JSON) so that a rejected row keeps
    its raw values. Extra columns admitted by an additive policy are kept as strings.
    """
    present = set(df.columns)
    typed: dict[str, SparkColumn] = {}
    for col in contract.columns:
        if col.source_name not in present:
            typed[f"_typed_{col.name}"] = F.lit(None).cast(col.type)
        elif col.type in ("date", "timestamp") and col.format:
            parsed = F.try_to_timestamp(F.col(_q(col.source_name)).cast("string"), F.lit(col.format))
            typed[f"_typed_{col.name}"] = parsed.cast(col.type)
        else:
            typed[f"_typed_{col.name}"] = F.expr(f"try_cast({_q(col.source_name)} AS {col.type})")
    for name in extra:
        typed[f"_typed_{name}"] = F.col(_q(name)).cast("string")
    return df.withColumns(typed)


def checks(contract: Contract, present: Sequence[str]) -> list[Check]:
    """Every check of a contract in a fixed order: types, not-null, rules, duplicates.

    ``present`` are the columns of the raw DataFrame (a source column the file lacks is null).
    """
    have = set(present)
    out: list[Check] = []
    for col in contract.columns:
        src = F.col(_q(col.source_name)) if col.source_name in have else F.lit(None).cast("string")
        value = _typed(col.name)
        pattern = f" '{col.format}'" if col.format else ""
        out.append(Check(f"type:{col.name}", "reject",
                         F.concat(F.lit(f"cannot read {col.source_name}="), _shown(src),
                                  F.lit(f" as {col.type}{pattern}")),
                         src.isNotNull() & value.isNull()))
        if not col.nullable:
            out.append(Check(f"not_null:{col.name}", "reject", F.lit(f"{col.source_name} is missing"),
                             src.isNull()))
    for rule in contract.rules:
        out.append(_rule_check(rule, contract))
    if contract.deduplicate and contract.primary_key:
        keys = ", ".join(contract.primary_key)
        out.append(Check(DUPLICATE_RULE, "reject", F.lit(f"superseded by a later row with the same {keys}")))
    if CORRUPT_COL in have:
        out.append(Check(MALFORMED_RULE, "reject", F.lit("the record could not be parsed"),
                         F.col(CORRUPT_COL).isNotNull()))
    return out


def _rule_check(rule: Rule, contract: Contract) -> Check:
    if rule.type == "unique":
        return Check(rule.name, rule.action, F.lit(f"{', '.join(rule.columns)} is not unique in this batch"))
    col = contract.column(rule.columns[0])
    value = _typed(col.name)
    if rule.type == "not_null":
        return Check(rule.name, rule.action, F.lit(f"null in {', '.join(rule.columns)}"),
                     _any([_typed(c).isNull() for c in rule.columns]))
    if rule.type == "allowed_values":
        allowed = [F.lit(v).cast(col.type) for v in rule.values]
        return Check(rule.name, rule.action,
                     F.concat(F.lit(f"{col.name}="), _shown(value), F.lit(" is not an allowed value")),
                     value.isNotNull() & ~value.isin(allowed))
    if rule.type == "range":
        bounds = []
        if rule.min is not None:
            bounds.append(value < F.lit(rule.min))
        if rule.max is not None:
            bounds.append(value > F.lit(rule.max))
        shown = f"[{'' if rule.min is None else rule.min}, {'' if rule.max is None else rule.max}]"
        return Check(rule.name, rule.action,
                     F.concat(F.lit(f"{col.name}="), value.cast("string"), F.lit(f" outside {shown}")),
                     value.isNotNull() & _any(bounds))
    if rule.type == "regex":
        return Check(rule.name, rule.action,
                     F.concat(F.lit(f"{col.name}="), _shown(value), F.lit(f" does not match {rule.pattern}")),
                     value.isNotNull() & ~value.rlike(str(rule.pattern)))
    raise ValueError(f"unknown rule type {rule.type}")


def row_flags(df: DataFrame, contract: Contract, all_checks: Sequence[Check]) -> DataFrame:
    """One boolean column per row-level check. A record the reader could not parse is flagged
    ``malformed`` only: checks on its partial values would repeat the same cause."""
    parsed = F.col(CORRUPT_COL).isNull() if CORRUPT_COL in df.columns else F.lit(True)
    flags = {}
    for i, check in enumerate(all_checks):
        if check.condition is None:
            continue
        cond = check.condition if check.rule == MALFORMED_RULE else parsed & check.condition
        flags[_flag(i)] = F.coalesce(cond, F.lit(False))
    return df.withColumns(flags)


def _rejected(df: DataFrame, all_checks: Sequence[Check]) -> SparkColumn:
    return _any([F.col(_flag(i)) for i, c in enumerate(all_checks) if c.blocking and _flag(i) in df.columns])


def deduplicate(df: DataFrame, contract: Contract, all_checks: Sequence[Check]) -> DataFrame:
    """Keep one row per primary key among the valid rows, the latest by ``order_by``.

    The others are not dropped: their ``duplicate`` flag sends them to quarantine. Rejected rows
    take no part, so a bad newer row never displaces a good older one.
    """
    idx = next((i for i, c in enumerate(all_checks) if c.rule == DUPLICATE_RULE), None)
    if idx is None:
        return df
    rejected = _rejected(df, all_checks)
    order = [_typed(c).desc_nulls_last() for c in contract.dedupe_order_by]
    order += [F.col(SOURCE_FILE_COL).desc(), F.xxhash64(*[_typed(c.name) for c in contract.columns]).desc()]
    window = Window.partitionBy(rejected, *[_typed(c) for c in contract.primary_key]).orderBy(*order)
    return df.withColumn(_flag(idx), ~rejected & (F.row_number().over(window) > 1))


def check_unique(df: DataFrame, contract: Contract, all_checks: Sequence[Check]) -> DataFrame:
    """Flag every row of a key that appears more than once among the valid rows."""
    rules = {r.name: r for r in contract.rules if r.type == "unique"}
    out = df
    for i, check in enumerate(all_checks):
        if check.rule in rules:
            rejected = _rejected(out, all_checks)
            window = Window.partitionBy(rejected, *[_typed(c) for c in rules[check.rule].columns])
            out = out.withColumn(_flag(i), ~rejected & (F.count(F.lit(1)).over(window) > 1))
    return out


def add_lineage(df: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Stamp every row with the run and the ingest time (the source file is set by the reader)."""
    return df.withColumns({RUN_ID_COL: F.lit(run_id), INGESTED_AT_COL: F.lit(ingested_at).cast("timestamp")})


def validate(df: DataFrame, contract: Contract, run_id: str, ingested_at: dt.datetime,
             extra: Sequence[str] = ()) -> DataFrame:
    """The row pipeline: null markers, types, rules, de-duplication, lineage.

    Returns one DataFrame with typed values, one flag per check and ``_lake_rejected``; the raw
    values are kept for rejected rows only. ``curated`` and ``quarantine`` select the two outputs.
    """
    sources = [c.source_name for c in contract.columns if c.source_name in df.columns] + list(extra)
    all_checks = checks(contract, df.columns)
    out = null_markers(df, sources, contract.format.null_values)
    out = typed_columns(out, contract, extra)
    out = row_flags(out, contract, all_checks)
    out = deduplicate(out, contract, all_checks)
    out = check_unique(out, contract, all_checks)
    out = add_lineage(out, run_id, ingested_at)
    out = out.withColumn(REJECTED_COL, _rejected(out, all_checks))
    raw = [*sources, CORRUPT_COL] if CORRUPT_COL in df.columns else sources
    return out.withColumns({c: F.when(F.col(REJECTED_COL), F.col(_q(c))) for c in raw})


def curated(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """The rows that passed, with contract names and types, new columns and lineage."""
    cols = [_typed(c.name).alias(c.name) for c in contract.columns]
    cols += [_typed(e).alias(e) for e in extra]
    cols += [F.col(SOURCE_FILE_COL), F.col(INGESTED_AT_COL), F.col(RUN_ID_COL)]
    return df.filter(~F.col(REJECTED_COL)).select(*cols)


def quarantine(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """The rejected rows: every value as it arrived (text), the rules broken and why, lineage."""
    present = set(df.columns)
    all_checks = checks(contract, [c for c in df.columns if not c.startswith(("_typed_", "_chk_"))])
    cols = [
        (F.col(_q(c.source_name)).cast("string") if c.source_name in present else F.lit(None).cast("string"))
        .alias(c.name)
        for c in contract.columns
    ]
    cols += [F.col(_q(e)).cast("string").alias(e) for e in extra]
    raw = F.col(CORRUPT_COL) if CORRUPT_COL in present else F.lit(None).cast("string")
    violations = F.array(*[
        F.when(F.col(_flag(i)), F.struct(F.lit(c.rule).alias("rule"), F.lit(c.action).alias("action"),
                                         c.detail.cast("string").alias("detail")))
        for i, c in enumerate(all_checks) if _flag(i) in present
    ])
    cols += [raw.alias(RAW_RECORD_COL), F.array_compact(violations).alias(VIOLATIONS_COL),
             F.col(SOURCE_FILE_COL), F.col(INGESTED_AT_COL), F.col(RUN_ID_COL)]
    return df.filter(F.col(REJECTED_COL)).select(*cols)


def observed_metrics(df: DataFrame, contract: Contract) -> list[SparkColumn]:
    """Aggregates for Spark's Observation: collected in the same pass that writes the data."""
    all_checks = checks(contract, [c for c in df.columns if not c.startswith(("_typed_", "_chk_"))])
    flagged = [(i, c) for i, c in enumerate(all_checks) if _flag(i) in df.columns]

    def count_if(cond: SparkColumn) -> SparkColumn:
        return F.sum(F.when(cond, 1).otherwise(0))

    metrics = [
        F.count(F.lit(1)).alias("rows_read"),
        count_if(F.col(REJECTED_COL)).alias("rows_quarantined"),
        count_if(_any([F.col(_flag(i)) for i, c in flagged if c.action == "fail"])).alias("rows_failing"),
        count_if(_any([F.col(_flag(i)) for i, c in flagged if c.action == "warn"])).alias("rows_warned"),
    ]
    metrics += [count_if(F.col(_flag(i))).alias(f"rule:{c.rule}") for i, c in flagged]
    return metrics


def rule_names(contract: Contract, with_malformed: bool = True) -> list[str]:
    """Every rule a row can break, implicit ones (types, not-null, duplicates) included."""
    present = [c.source_name for c in contract.columns] + ([CORRUPT_COL] if with_malformed else [])
    return [c.rule for c in checks(contract, present)]
