"""Contract validation: good contracts load, bad ones fail naming the dataset and the field."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from lake_ingest import Contract, ContractError, load_contract_files
from lake_ingest._contract import SIMPLE_TYPES, normalize_type


@pytest.fixture
def orders_doc(contracts_dir):
    with open(contracts_dir / "orders.yaml") as fh:
        return yaml.safe_load(fh)


def test_repository_contracts_load(contracts_dir):
    docs = load_contract_files(contracts_dir)
    contracts = {d["dataset_id"]: Contract.from_dict(d) for d in docs}
    assert sorted(contracts) == ["customers", "meter_readings", "orders"]
    assert {c.format.type for c in contracts.values()} == {"csv", "jsonl", "parquet"}
    orders = contracts["orders"]
    assert orders.column("amount").type == "decimal(12,2)"
    assert orders.column("order_id").source_name == "ORDER_ID"
    assert orders.partition_by == ("order_date",)
    assert orders.deduplicate and orders.dedupe_order_by == ("updated_at",)
    assert [c.name for c in orders.data_columns] == [
        "order_id", "customer_id", "order_ts", "status", "amount", "currency", "updated_at"]
    assert orders.source.matches("erp/orders/orders_2026-11-01.csv.gz")
    assert not orders.source.matches("erp/orders/archive/other.txt")
    assert not orders.source.matches("erp/other/orders_2026-11-01.csv.gz")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["columns"][0].update(type="integr"), "columns[0] (order_id).type: unknown type 'integr'"),
        (lambda d: d.update(partition_by=["nope"]), "partition_by: 'nope' is not a column"),
        (lambda d: d["columns"].append({"name": "status", "type": "string"}), "(status): duplicate column name"),
        (lambda d: d.update(primary_key=["currency"]), "primary_key: 'currency' must be declared nullable: false"),
        (lambda d: d["format"].update(type="xml"), "format.type: 'xml' is not one of"),
        (lambda d: d["format"]["options"].update(delimeter=";"), "format.options.delimeter: is not a csv option"),
        (lambda d: d["format"]["options"].update(encoding="klingon-8"), "unknown encoding 'klingon-8'"),
        (lambda d: d["format"]["options"].update(multiline="yes"), "format.options.multiline: must be a bool"),
        (lambda d: d["quality"].append({"name": "r", "type": "range", "column": "amount", "min": 5, "max": 1,
                                        "action": "reject"}), "min 5 is greater than max 1"),
        (lambda d: d["quality"].append({"name": "r", "type": "regex", "column": "status", "pattern": "([",
                                        "action": "warn"}), "pattern: does not compile"),
        (lambda d: d["quality"].append({"name": "r", "type": "not_null", "column": "ghost",
                                        "action": "drop"}), "action: 'drop' is not one of reject, warn, fail"),
        (lambda d: d.update(schema_evolution="yolo"), "schema_evolution: 'yolo' is not one of strict, additive"),
        (lambda d: d["columns"].append({"name": "lake_x", "type": "string"}), "reserved for lineage columns"),
        (lambda d: d.update(colums=[]), "colums: unknown field"),
        (lambda d: d["source"].update(prefix="/abs"), "source.prefix: must be a relative key prefix"),
        (lambda d: d["columns"][0].update(dictionary="no"), "columns[0] (order_id).dictionary: must be true or false"),
        (lambda d: d["columns"][2].update(type="string"),
         "columns[2] (order_ts).format: only date and timestamp columns take a format"),
        # names the job uses for its working columns
        (lambda d: d["columns"].append({"name": "_typed_status", "type": "string"}),
         "'_typed_status' must be a lower-case identifier starting with a letter"),
        (lambda d: d["columns"].append({"name": "x", "type": "string", "source": "_corrupt_record"}),
         "columns[8] (x).source: '_corrupt_record' is a name the job uses itself"),
        (lambda d: d["columns"].append({"name": "x", "type": "string", "source": "Lake_Source_File"}),
         "columns[8] (x).source: 'Lake_Source_File' is a name the job uses itself"),
        # Spark compares names without regard to case
        (lambda d: d["columns"].append({"name": "x", "type": "string", "source": "status"}),
         "columns[8] (x).source: source column 'status' is mapped twice (names are compared without regard to case)"),
        (lambda d: d["columns"].append({"name": "x", "type": "string", "source": ["X"]}),
         "columns[8] (x).source: must be a non-empty string"),
        (lambda d: d["columns"][2].update(format=20240101),
         "columns[2] (order_ts).format: must be a Spark datetime pattern in quotes"),
        # reader options Spark and the sniffer take as one character
        (lambda d: d["format"]["options"].update(comment="//"), "format.options.comment: must be one character, got '//'"),
        (lambda d: d["format"]["options"].update(delimiter="||"), "format.options.delimiter: must be one character"),
        (lambda d: d["format"]["options"].update(quote="''"), "format.options.quote: must be one character"),
        # a zone for the local times of the source: the IANA database's names only
        (lambda d: d["format"].update(time_zone="Europe/Berlln"),
         "format.time_zone: 'Europe/Berlln' is not a time zone of the IANA database"),
        (lambda d: d["format"].update(time_zone="+01:00"), "format.time_zone: '+01:00' is not a time zone"),
        (lambda d: d["format"].update(time_zone="../etc/passwd"), "format.time_zone: '../etc/passwd' is not"),
        (lambda d: d["format"].update(time_zone=1), "format.time_zone: 1 is not a time zone"),
        (lambda d: d["format"].update(time_zone="posix/Europe/Berlin"), "format.time_zone: 'posix/Europe/Berlin' is not"),
        (lambda d: d["format"].update(time_zone="localtime"), "format.time_zone: 'localtime' is not"),
        (lambda d: (d["format"].update(time_zone="Europe/Berlin"),
                    d["columns"][2].update(format="yyyy-MM-dd HH:mm:ss[XXX]")),
         "columns[2] (order_ts).format: an optional zone ('yyyy-MM-dd HH:mm:ss[XXX]') with time_zone Europe/Berlin"),
        # encodings Spark cannot split into lines before decoding
        (lambda d: d["format"]["options"].update(encoding="cp037"),
         "format.options.encoding: 'cp037' does not store ASCII text as ASCII bytes"),
        (lambda d: d["format"]["options"].update(encoding="UTF-16"),
         "unless a CSV contract sets multiline: true"),
        # allowed values that would not convert to the column's type would switch the rule off
        (lambda d: d["quality"][0].update(values=["NEW", None]),
         "quality[0] (status_known).values: None: null matches no row"),
        (lambda d: d["quality"][0].update(values=["NEW", False]),
         "quality[0] (status_known).values: False: must be quoted text for a string column, got bool"),
        (lambda d: d["quality"].append({"name": "r", "type": "allowed_values", "column": "customer_id",
                                        "values": [1, "x"], "action": "reject"}),
         "quality[3] (r).values: 'x': must be a whole number for a bigint column"),
        (lambda d: d["quality"].append({"name": "r", "type": "allowed_values", "column": "amount",
                                        "values": [1.5, 1.255], "action": "reject"}),
         "quality[3] (r).values: 1.255: has more than 2 decimal places"),
        (lambda d: d["quality"].append({"name": "r", "type": "allowed_values", "column": "order_date",
                                        "values": ["2024-12-24", "24/12/2024"], "action": "reject"}),
         "quality[3] (r).values: '24/12/2024': is not an ISO date"),
        # range bounds that are not finite, or too large for Spark's literals
        (lambda d: d["quality"][1].update(min=float("nan")), "quality[1] (amount_in_range).min: must be a finite number"),
        (lambda d: d["quality"][1].update(max=2**63), "quality[1] (amount_in_range).max: must fit in a 64-bit integer"),
        # a column named twice made every run fail on an ambiguous reference, naming no field
        (lambda d: d.update(primary_key=["order_id", "order_id"]), "primary_key: lists 'order_id' twice"),
        (lambda d: d["quality"].append({"name": "u", "type": "unique", "columns": ["order_id", "order_id"],
                                        "action": "reject"}), "quality[3] (u).columns: lists 'order_id' twice"),
        (lambda d: d.update(deduplicate={"order_by": ["updated_at", "updated_at"]}),
         "deduplicate.order_by: lists 'updated_at' twice"),
        # Python's Decimal takes '1_000', Spark's cast makes it null: the rule would pass every row
        (lambda d: d["quality"].append({"name": "r", "type": "allowed_values", "column": "amount",
                                        "values": ["1_000"], "action": "reject"}),
         "quality[3] (r).values: '1_000': must be a number for a decimal(12,2) column"),
        # a field the rule's type does not read, and a pattern that is no text
        (lambda d: d["quality"][1].update(pattern="^x$"),
         "quality[1] (amount_in_range).pattern: only regex rules take it (this rule is range)"),
        (lambda d: d["quality"][0].update(min=1), "quality[0] (status_known).min: only range rules take it"),
        (lambda d: d["quality"].append({"name": "r", "type": "regex", "column": "currency", "pattern": 5,
                                        "action": "warn"}), "quality[3] (r).pattern: must be text in quotes, got int"),
        # YAML reads an unquoted date as a date: a column description is text
        (lambda d: d["columns"][0].update(description=__import__("datetime").date(2026, 1, 1)),
         "columns[0] (order_id).description: must be text"),
        # 0 equals False in Python: it was taken for "no de-duplication" without a word
        (lambda d: d.update(deduplicate=0), "deduplicate: must be true, false or {order_by: [columns]}, got int"),
        # Glue refuses a table description longer than 2,048 characters, after the run's commit point
        (lambda d: d.update(description="x" * 2049), "description: must be text of at most 2048 characters"),
    ],
)
def test_invalid_contracts_name_dataset_and_field(orders_doc, mutate, expected):
    doc = copy.deepcopy(orders_doc)
    mutate(doc)
    with pytest.raises(ContractError) as info:
        Contract.from_dict(doc)
    message = str(info.value)
    assert "dataset 'orders'" in message
    assert expected in message


def test_an_unknown_format_is_one_problem(orders_doc):
    doc = copy.deepcopy(orders_doc)
    doc["format"]["type"] = ["csv"]
    with pytest.raises(ContractError) as info:
        Contract.from_dict(doc)
    assert [p for p in info.value.problems if p.startswith("format.")] == [
        "format.type: '['csv']' is not one of csv, jsonl, parquet"]


def test_all_problems_reported_at_once(orders_doc):
    doc = copy.deepcopy(orders_doc)
    doc["columns"][0]["type"] = "nope"
    doc["partition_by"] = ["ghost"]
    doc["target"]["table"] = "Bad Name"
    with pytest.raises(ContractError) as info:
        Contract.from_dict(doc)
    assert info.value.problems == [
        "columns[0] (order_id).type: unknown type 'nope' (expected one of string, boolean, smallint, int, bigint, "
        "float, double, date, timestamp, decimal(p,s))",
        "partition_by: 'ghost' is not a column",
        "target.table: must be a lower-case identifier starting with a letter ([a-z][a-z0-9_]*)",
    ]


def test_partition_column_rules(orders_doc):
    doc = copy.deepcopy(orders_doc)
    doc["partition_by"] = ["amount"]
    with pytest.raises(ContractError, match="'amount' has type decimal"):
        Contract.from_dict(doc)
    doc["partition_by"] = ["currency"]
    with pytest.raises(ContractError, match="'currency' must be declared nullable: false"):
        Contract.from_dict(doc)


def test_columns_written_without_a_dictionary(orders_doc):
    assert Contract.from_dict(orders_doc).plain_encoded == ("order_id", "order_ts")  # the key, and marked
    doc = copy.deepcopy(orders_doc)
    by_name = {c["name"]: c for c in doc["columns"]}
    by_name["order_id"]["dictionary"] = True  # an explicit choice wins over the key's default
    by_name["order_ts"].pop("dictionary")
    by_name["amount"]["dictionary"] = False
    by_name["order_date"]["dictionary"] = False  # a partition column is not in the files
    assert Contract.from_dict(doc).plain_encoded == ("amount",)
    doc["primary_key"] = ["order_id", "customer_id"]
    by_name["order_id"].pop("dictionary")
    by_name["customer_id"]["nullable"] = False
    assert Contract.from_dict(doc).plain_encoded == ("amount",)  # a column of a composite key repeats


def test_missing_required_sections():
    with pytest.raises(ContractError) as info:
        Contract.from_dict({"dataset_id": "x"})
    problems = "\n".join(info.value.problems)
    for section in ("source", "format", "columns", "target"):
        assert f"{section}: is required" in problems


def test_file_name_must_match_dataset(tmp_path, orders_doc):
    (tmp_path / "sales.yaml").write_text(yaml.safe_dump(orders_doc))
    with pytest.raises(ContractError, match=r"sales\.yaml: file name must be orders\.yaml"):
        load_contract_files(tmp_path)


@pytest.mark.parametrize(("raw", "canonical"), [
    ("BIGINT", "bigint"), ("integer", "int"), ("decimal(10, 2)", "decimal(10,2)"), ("decimal(39,2)", None),
    ("decimal(5,6)", None), ("varchar", None), ("timestamp", "timestamp"),
])
def test_normalize_type(raw, canonical):
    assert normalize_type(raw) == canonical


def test_a_contract_file_the_deployment_would_not_load_is_refused(contracts_dir, tmp_path):
    """Terraform loads *.yaml only: an orders.yml was left out without a word, and a file in
    another encoding stopped the loader with a traceback."""
    import shutil

    shutil.copytree(contracts_dir, tmp_path / "c")
    (tmp_path / "c" / "orders.yaml").rename(tmp_path / "c" / "orders.yml")
    with pytest.raises(ContractError, match=r"holds orders\.yml: contracts are \*\.yaml files"):
        load_contract_files(tmp_path / "c")
    (tmp_path / "c" / "orders.yml").unlink()
    (tmp_path / "c" / "latin.yaml").write_bytes("dataset_id: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ContractError, match=r"latin\.yaml: not UTF-8 text"):
        load_contract_files(tmp_path / "c")


def test_java_only_regex_syntax_is_left_to_the_job(contracts_dir, spark):
    """Spark matches with Java's regex engine. Python's cannot compile Unicode classes,
    ``(?<name>...)`` groups and other Java syntax, so those patterns pass here and the job
    compiles them with Java (as this test does first)."""
    doc = yaml.safe_load((contracts_dir / "orders.yaml").read_text())
    for pattern in (r"^\p{Lu}{3}$", r"^(?<code>[A-Z]{3})$", r"^[A-Z]{3}\z", r"^\Q1.5\E$", r"^\h*x$", r"\R",
                    r"^\pL+$", r"^\PN+$", r"^[\x{41}-\x{5A}]+$", r"(?U)^\w+$", r"(?d)^a.$", r"(?iU)^\w+$"):
        spark.sparkContext._jvm.java.util.regex.Pattern.compile(pattern)
        with pytest.raises(re.error):
            re.compile(pattern)
        rules = [*doc["quality"], {"name": "r", "type": "regex", "column": "currency", "pattern": pattern,
                                   "action": "warn"}]
        assert Contract.from_dict({**doc, "quality": rules}).rules[-1].pattern == pattern



def test_a_multiline_csv_may_use_any_encoding(orders_doc):
    """A multiline CSV file is decoded whole, so UTF-16 works there (and nowhere else)."""
    doc = copy.deepcopy(orders_doc)
    doc["format"]["options"].update(encoding="UTF-16", multiline=True)
    assert Contract.from_dict(doc).format.encoding == "UTF-16"
    doc = {**copy.deepcopy(orders_doc), "format": {"type": "jsonl", "options": {"encoding": "UTF-16"}}}
    with pytest.raises(ContractError, match="'UTF-16' does not store ASCII text as ASCII bytes"):
        Contract.from_dict(doc)


def test_allowed_values_of_each_type_that_pass(orders_doc):
    doc = copy.deepcopy(orders_doc)
    doc["quality"] += [
        {"name": "a", "type": "allowed_values", "column": "customer_id", "values": [1, 2**62], "action": "warn"},
        {"name": "b", "type": "allowed_values", "column": "amount", "values": [1, 2.5, "0.10"], "action": "warn"},
        {"name": "c", "type": "allowed_values", "column": "order_date", "values": ["2024-12-24"], "action": "warn"},
        {"name": "d", "type": "allowed_values", "column": "order_ts", "values": ["2024-12-24 10:00:00"],
         "action": "warn"},
    ]
    rules = Contract.from_dict(doc).rules
    assert [r.values for r in rules[-4:]] == [(1, 2**62), (1, 2.5, "0.10"), ("2024-12-24",), ("2024-12-24 10:00:00",)]


def test_yaml_that_parsers_read_differently_is_refused(tmp_path, contracts_dir):
    """``NO`` is false for PyYAML and for Terraform's yamldecode, ``Y`` only for yamldecode,
    and ``010`` is 8 for one and 10 for the other: the local and deployed contracts would differ."""
    text = (contracts_dir / "orders.yaml").read_text()
    (tmp_path / "orders.yaml").write_text(text.replace("values: [EUR, USD, GBP]", "values: [EUR, NO, Y, 010]"))
    with pytest.raises(ContractError) as info:
        load_contract_files(tmp_path)
    assert [p.split(": ", 1)[1].split(" is read")[0] for p in info.value.problems[:3]] == [
        "line 40: NO", "line 40: Y", "line 40: 010"]
    assert info.value.problems[3:] == [  # and what the contract check makes of the values as PyYAML reads them
        "orders.yaml: quality[2] (currency_known).values: False: must be quoted text for a string column, got bool",
        "orders.yaml: quality[2] (currency_known).values: 8: must be quoted text for a string column, got int"]
    assert "quote it ('NO')" in info.value.problems[0]
    assert info.value.dataset_id == "orders"
    quoted = text.replace("values: [EUR, USD, GBP]", "values: [EUR, 'NO', \"Y\", '010']")
    (tmp_path / "orders.yaml").write_text(quoted)
    (doc,) = load_contract_files(tmp_path)
    assert doc["quality"][2]["values"] == ["EUR", "NO", "Y", "010"]


def test_a_yaml_float_with_more_digits_than_a_double_keeps_is_refused():
    """PyYAML reads 12345678901234567.89 as 1.2345678901234568e+16, Terraform's yamldecode keeps
    every digit: the local and the deployed contract would differ."""
    from lake_ingest._contract_store import yaml_problems

    problems = yaml_problems("a: 12345678901234567.89\nb: 0.1234567890123456\nc: '12345678901234567.89'\n"
                             "d: 1.234567890123450\ne: 123456789012345678901\n")
    assert [p.split(" is read")[0] for p in problems] == ["line 1: 12345678901234567.89", "line 2: 0.1234567890123456"]
    assert "PyYAML reads it as 1.2345678901234568e+16" in problems[0]


def test_repeated_yaml_keys_are_refused(tmp_path, contracts_dir):
    text = (contracts_dir / "orders.yaml").read_text()
    (tmp_path / "orders.yaml").write_text(text + "quality:\n  - {name: x, type: not_null, column: status, action: warn}\n")
    with pytest.raises(ContractError, match=r"orders\.yaml: line \d+: key 'quality' appears twice in one mapping"):
        load_contract_files(tmp_path)


def test_two_contracts_may_not_write_one_table(tmp_path, orders_doc):
    """Runs of both (with one run id, as the state machine gives) would delete each other's rows."""
    other = {**copy.deepcopy(orders_doc), "dataset_id": "orders_us"}
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(orders_doc))
    (tmp_path / "orders_us.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ContractError) as info:
        load_contract_files(tmp_path)
    assert info.value.problems == ["target: orders_us and orders both write sales.orders; every dataset needs a "
                                   "table of its own", "target: orders_us and orders both write sales.orders_quarantine; "
                                   "every dataset needs a table of its own"]
    # nor may one dataset's table be another's quarantine table
    other["target"]["table"] = "orders_quarantine"
    (tmp_path / "orders_us.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ContractError, match=r"orders_us and orders both write sales\.orders_quarantine"):
        load_contract_files(tmp_path)
    other["target"]["table"] = "orders_us"
    (tmp_path / "orders_us.yaml").write_text(yaml.safe_dump(other))
    assert [d["dataset_id"] for d in load_contract_files(tmp_path)] == ["orders", "orders_us"]


def test_yaml_checks_end_on_self_referring_aliases_and_flag_numbers_parsers_disagree_on(tmp_path, contracts_dir):
    from lake_ingest._contract_store import yaml_problems

    assert yaml_problems("a: &x [1, *x]\n") == []
    flagged = yaml_problems("a: 1e3\nb: 0o17\nc: 1_000\nd: 1.5\ne: 10\nf: '1e3'\n")
    assert [p.split(" is read")[0] for p in flagged] == ["line 1: 1e3", "line 2: 0o17", "line 3: 1_000"]


@pytest.mark.parametrize(("value", "column", "problem"), [
    ("20241224", "order_date", "is not an ISO date (YYYY-MM-DD)"),  # Python reads it; Spark casts it to null
    ("2024-W52-2", "order_date", "is not an ISO date"),
    ("20241224T100000", "order_ts", "is not an ISO timestamp"),
    ("1234567890.123", "amount", "has more than 2 decimal places"),
])
def test_allowed_values_spark_would_not_cast_alike(orders_doc, value, column, problem):
    doc = copy.deepcopy(orders_doc)
    doc["quality"].append({"name": "r", "type": "allowed_values", "column": column, "values": [value],
                           "action": "warn"})
    with pytest.raises(ContractError, match=re.escape(f"{value!r}: {problem}")):
        Contract.from_dict(doc)


def test_allowed_values_of_a_wide_decimal_are_kept_as_text(orders_doc):
    """An allowed value of a decimal(38,10) column is beyond a float: it stays exact text."""
    big = {"name": "big", "type": "decimal(38,10)"}
    doc = copy.deepcopy(orders_doc)
    doc["columns"].append(big)
    doc["quality"] = [{"name": "r", "type": "allowed_values", "column": "big",
                       "values": ["1234567890123456789012345678.1234567891"], "action": "warn"}]
    assert Contract.from_dict(doc).rules[0].values == ("1234567890123456789012345678.1234567891",)


def test_a_value_json_cannot_hold_is_a_contract_error_when_loaded(orders_doc):
    """The item stores the contract as JSON. A date that YAML made of an unquoted value in a field
    no check reads stopped the loading with a bare TypeError from the JSON encoder, naming no dataset."""
    import datetime as dt

    from lake_ingest._contract_store import _document

    with pytest.raises(ContractError, match=r"(?s)dataset 'orders'.*not JSON serializable.*quote it"):
        _document({**orders_doc, "note": dt.date(2026, 1, 1)}, "orders")
    assert json.loads(_document(orders_doc, "orders")) == orders_doc


def test_an_empty_description_is_no_description(orders_doc):
    doc = copy.deepcopy(orders_doc)
    doc["description"] = None  # `description:` left empty in the YAML file
    assert Contract.from_dict(doc).description == ""


def test_every_problem_of_a_contract_file_at_once_and_none_that_follows_from_another(tmp_path, contracts_dir):
    """A YAML problem does not hide the contract's; a column of an unknown type is not also
    said to be a string that its range rule cannot check; a missing pattern is only missing."""
    text = (contracts_dir / "orders.yaml").read_text()
    text = text.replace("values: [EUR, USD, GBP]", "values: [EUR, USD, 'GBP', Y]")
    text = text.replace('type: "decimal(12,2)"', 'type: "decimal(12.2)"')
    text = text.replace('  pattern: "orders_*.csv.gz"\n', "")
    (tmp_path / "orders.yaml").write_text(text)
    with pytest.raises(ContractError) as info:
        load_contract_files(tmp_path)
    problems = [p.split(": ", 1)[1] for p in info.value.problems]
    assert problems[0].startswith("line 39: Y is read as text by some YAML parsers")  # one line less: the pattern
    assert problems[1:] == [
        "source.pattern: is required",
        "columns[5] (amount).type: unknown type 'decimal(12.2)' (expected one of " + ", ".join(SIMPLE_TYPES)
        + ", decimal(p,s))"]


def test_a_contract_too_large_for_a_dynamodb_item_is_refused_when_loaded(tmp_path, contracts_dir):
    """A DynamoDB item holds 400 KB: a contract file over the limit is refused with its size, not
    by a failing PutItem in the deployment."""
    doc = yaml.safe_load((contracts_dir / "orders.yaml").read_text())
    doc["quality"][0]["values"] += [f"STATUS_{i:06d}" for i in range(30_000)]  # a long allowed_values list
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ContractError, match=r"orders.yaml: the contract takes [\d,]+ bytes as JSON, more than 300,000"):
        load_contract_files(tmp_path)
    doc["quality"][0]["values"] = doc["quality"][0]["values"][:10_000]
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump(doc))
    assert len(load_contract_files(tmp_path)[0]["quality"][0]["values"]) == 10_000
