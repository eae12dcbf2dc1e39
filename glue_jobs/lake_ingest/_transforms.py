"""Pure DataFrame transforms of the ingest: cast, validate, de-duplicate, add lineage, split."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

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

VIOLATION_TYPE = T.StructType([
    T.StructField("rule", T.StringType()),
    T.StructField("action", T.StringType()),
    T.StructField("detail", T.StringType()),
])


def _violation(rule: str, action: str, condition: SparkColumn, detail: SparkColumn | str) -> SparkColumn:
    detail_col = F.lit(detail) if isinstance(detail, str) else detail
    return F.when(condition, F.struct(F.lit(rule).alias("rule"), F.lit(action).alias("action"),
                                      detail_col.cast("string").alias("detail")))


def _shown(col: SparkColumn) -> SparkColumn:
    """A raw value quoted for an error message, cut to 200 characters."""
    return F.concat(F.lit("'"), F.substring(col.cast("string"), 1, 200), F.lit("'"))


def null_markers(df: DataFrame, columns: Sequence[str], markers: Sequence[str]) -> DataFrame:
    """Turn the contract's null markers (``''``, ``'NULL'``, ...) into real nulls in string columns."""
    if not markers:
        return df
    string_cols = {f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType)}
    values = list(markers)
    return df.withColumns({
        c: F.when(F.col(c).isin(values), F.lit(None).cast("string")).otherwise(F.col(c))
        for c in columns if c in string_cols
    })


def _escape(name: object) -> str:
    return str(name).replace("`", "``")


def cast_columns(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """Add one typed column per contract column and the type / not-null violations.

    The source columns stay as they were (strings for text formats) so that quarantined rows
    keep the raw value. Typed columns are named ``_typed_<name>`` until ``split``.
    """
    present = set(df.columns)
    typed: dict[str, SparkColumn] = {}
    checks: list[SparkColumn] = []
    for col in contract.columns:
        src = F.col(f"`{_escape(col.source_name)}`") if col.source_name in present else F.lit(None).cast("string")
        if col.type in ("date", "timestamp") and col.format:
            value = F.try_to_timestamp(src.cast("string"), F.lit(col.format)).cast(col.type)
        else:
            value = F.expr(f"try_cast(`{_escape(col.source_name)}` AS {col.type})") if col.source_name in present \
                else F.lit(None).cast(col.type)
        typed[f"_typed_{col.name}"] = value
        checks.append(_violation(f"type:{col.name}", "reject", src.isNotNull() & value.isNull(),
                                 F.concat(F.lit(f"cannot read {col.source_name}="), _shown(src),
                                          F.lit(f" as {col.type}" + (f" '{col.format}'" if col.format else "")))))
        if not col.nullable:
            checks.append(_violation(f"not_null:{col.name}", "reject", src.isNull(),
                                     f"{col.source_name} is missing"))
    out = df.withColumns(typed)
    for name in extra:
        out = out.withColumn(f"_typed_{name}", F.col(f"`{_escape(name)}`").cast("string"))
    return out.withColumn(VIOLATIONS_COL, _compact(checks))


def _compact(items: Sequence[SparkColumn], existing: SparkColumn | None = None) -> SparkColumn:
    arr = F.filter(F.array(*items), lambda v: v.isNotNull()) if items else F.array().cast(T.ArrayType(VIOLATION_TYPE))
    return F.concat(existing, arr) if existing is not None else arr


def rule_check(rule: Rule, contract: Contract) -> SparkColumn | None:
    """The violation expression of a row-level rule (``unique`` is checked in ``check_unique``)."""
    if rule.type == "unique":
        return None
    col = contract.column(rule.columns[0])
    value = F.col(f"_typed_{col.name}")
    if rule.type == "not_null":
        missing = [F.col(f"_typed_{c}").isNull() for c in rule.columns]
        cond = missing[0]
        for m in missing[1:]:
            cond = cond | m
        return _violation(rule.name, rule.action, cond, f"null in {', '.join(rule.columns)}")
    if rule.type == "allowed_values":
        allowed = [F.lit(v).cast(col.type) for v in rule.values]
        return _violation(rule.name, rule.action, value.isNotNull() & ~value.isin(allowed),
                          F.concat(F.lit(f"{col.name}="), _shown(value), F.lit(" is not an allowed value")))
    if rule.type == "range":
        out_of_range = F.lit(False)
        if rule.min is not None:
            out_of_range = out_of_range | (value < F.lit(rule.min))
        if rule.max is not None:
            out_of_range = out_of_range | (value > F.lit(rule.max))
        bounds = f"[{'' if rule.min is None else rule.min}, {'' if rule.max is None else rule.max}]"
        return _violation(rule.name, rule.action, value.isNotNull() & out_of_range,
                          F.concat(F.lit(f"{col.name}="), value.cast("string"), F.lit(f" outside {bounds}")))
    if rule.type == "regex":
        return _violation(rule.name, rule.action, value.isNotNull() & ~value.rlike(str(rule.pattern)),
                          F.concat(F.lit(f"{col.name}="), _shown(value), F.lit(f" does not match {rule.pattern}")))
    raise ValueError(f"unknown rule type {rule.type}")


def apply_rules(df: DataFrame, contract: Contract) -> DataFrame:
    """Append the violations of every row-level quality rule."""
    checks = [c for c in (rule_check(r, contract) for r in contract.rules) if c is not None]
    if not checks:
        return df
    return df.withColumn(VIOLATIONS_COL, _compact(checks, F.col(VIOLATIONS_COL)))


def malformed_only(df: DataFrame) -> DataFrame:
    """A record the reader could not parse gets one violation, ``malformed``: the checks on its
    partial values would only repeat the same cause."""
    if CORRUPT_COL not in df.columns:
        return df
    malformed = F.array(_violation(MALFORMED_RULE, "reject", F.lit(True), "the record could not be parsed"))
    return df.withColumn(VIOLATIONS_COL, F.when(F.col(CORRUPT_COL).isNotNull(), malformed)
                         .otherwise(F.col(VIOLATIONS_COL)))


def _is_rejected(violations: SparkColumn) -> SparkColumn:
    return F.exists(violations, lambda v: v["action"].isin(*BLOCKING_ACTIONS))


def deduplicate(df: DataFrame, contract: Contract) -> DataFrame:
    """Keep one row per primary key among the valid rows: the latest by ``order_by``.

    The others are not dropped: they get a ``duplicate`` violation and go to quarantine.
    Rows already rejected take no part, so a bad newer row never displaces a good older one.
    """
    if not contract.deduplicate or not contract.primary_key:
        return df
    rejected = _is_rejected(F.col(VIOLATIONS_COL))
    order: list[SparkColumn] = [F.col(f"_typed_{c}").desc_nulls_last() for c in contract.dedupe_order_by]
    order += [F.col(SOURCE_FILE_COL).desc(), F.xxhash64(*[F.col(f"_typed_{c.name}") for c in contract.columns]).desc()]
    window = Window.partitionBy(rejected, *[F.col(f"_typed_{c}") for c in contract.primary_key]).orderBy(*order)
    rank = F.row_number().over(window)
    keys = ", ".join(contract.primary_key)
    dup = _violation(DUPLICATE_RULE, "reject", ~rejected & (rank > 1),
                     f"superseded by a later row with the same {keys}")
    return df.withColumn(VIOLATIONS_COL, _compact([dup], F.col(VIOLATIONS_COL)))


def check_unique(df: DataFrame, contract: Contract) -> DataFrame:
    """Flag every row of a key that appears more than once among the valid rows."""
    rules = [r for r in contract.rules if r.type == "unique"]
    out = df
    for rule in rules:
        rejected = _is_rejected(F.col(VIOLATIONS_COL))
        window = Window.partitionBy(rejected, *[F.col(f"_typed_{c}") for c in rule.columns])
        dup = _violation(rule.name, rule.action, ~rejected & (F.count(F.lit(1)).over(window) > 1),
                         f"{', '.join(rule.columns)} is not unique in this batch")
        out = out.withColumn(VIOLATIONS_COL, _compact([dup], F.col(VIOLATIONS_COL)))
    return out


def add_lineage(df: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Stamp every row with the run and the ingest time (the source file is set by the reader)."""
    return df.withColumns({
        RUN_ID_COL: F.lit(run_id),
        INGESTED_AT_COL: F.lit(ingested_at).cast("timestamp"),
    })


def validate(df: DataFrame, contract: Contract, run_id: str, ingested_at: dt.datetime,
             extra: Sequence[str] = ()) -> DataFrame:
    """The whole row-level pipeline: null markers, casts, rules, de-duplication, lineage.

    Returns one DataFrame holding raw and typed values, the list of violations per row and a
    boolean ``_lake_rejected``; ``curated`` and ``quarantine`` select the two outputs from it.
    """
    sources = [c.source_name for c in contract.columns] + list(extra)
    out = null_markers(df, sources, contract.format.null_values)
    out = cast_columns(out, contract, extra)
    out = apply_rules(out, contract)
    out = malformed_only(out)
    out = deduplicate(out, contract)
    out = check_unique(out, contract)
    out = add_lineage(out, run_id, ingested_at)
    return out.withColumn(REJECTED_COL, _is_rejected(F.col(VIOLATIONS_COL)))


def curated(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """The rows that passed, with contract names and types, new columns and lineage."""
    cols = [F.col(f"_typed_{c.name}").alias(c.name) for c in contract.columns]
    cols += [F.col(f"_typed_{e}").alias(e) for e in extra]
    cols += [F.col(SOURCE_FILE_COL), F.col(INGESTED_AT_COL), F.col(RUN_ID_COL)]
    return df.filter(~F.col(REJECTED_COL)).select(*cols)


def quarantine(df: DataFrame, contract: Contract, extra: Sequence[str] = ()) -> DataFrame:
    """The rejected rows: every value as it arrived (text), why it was rejected, lineage."""
    present = set(df.columns)
    cols = [
        (F.col(f"`{_escape(c.source_name)}`").cast("string") if c.source_name in present
         else F.lit(None).cast("string")).alias(c.name)
        for c in contract.columns
    ]
    cols += [F.col(f"`{_escape(e)}`").cast("string").alias(e) for e in extra]
    raw = F.col(CORRUPT_COL) if CORRUPT_COL in present else F.lit(None).cast("string")
    cols += [raw.alias(RAW_RECORD_COL), F.col(VIOLATIONS_COL), F.col(SOURCE_FILE_COL),
             F.col(INGESTED_AT_COL), F.col(RUN_ID_COL)]
    return df.filter(F.col(REJECTED_COL)).select(*cols)


def observed_metrics(df: DataFrame, contract: Contract) -> list[SparkColumn]:
    """Aggregates for Spark's Observation: collected in the same pass that writes the data."""
    viol = F.col(VIOLATIONS_COL)
    metrics = [
        F.count(F.lit(1)).alias("rows_read"),
        F.sum(F.col(REJECTED_COL).cast("long")).alias("rows_quarantined"),
        F.sum(F.exists(viol, lambda v: v["action"] == "fail").cast("long")).alias("rows_failing"),
        F.sum(F.exists(viol, lambda v: v["action"] == "warn").cast("long")).alias("rows_warned"),
    ]
    for name in rule_names(contract, CORRUPT_COL in df.columns):
        metrics.append(F.sum(_breaks(viol, name).cast("long")).alias(f"rule:{name}"))
    return metrics


def _breaks(violations: SparkColumn, rule: str) -> SparkColumn:
    return F.exists(violations, lambda v: v["rule"] == F.lit(rule))


def rule_names(contract: Contract, with_malformed: bool = True) -> list[str]:
    """Every rule a row can break, implicit ones (types, not-null, duplicates) included."""
    names = [MALFORMED_RULE] if with_malformed else []
    names += [f"type:{c.name}" for c in contract.columns]
    names += [f"not_null:{c.name}" for c in contract.columns if not c.nullable]
    names += [r.name for r in contract.rules]
    if contract.deduplicate:
        names.append(DUPLICATE_RULE)
    return names
