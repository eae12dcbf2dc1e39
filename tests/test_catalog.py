"""The catalog adapter against emulated Glue: create, evolve, and refuse what it cannot write."""

from __future__ import annotations

import pytest

from lake_ingest import SchemaConflict, TableSpec
from lake_ingest._catalog import add_partitions, check_table, ensure_table

COLUMNS = (("order_id", "bigint"), ("amount", "decimal(12,2)"))
PARTS = (("order_date", "date"), ("lake_run_id", "string"))


def spec(columns=COLUMNS, parts=PARTS, database="sales") -> TableSpec:
    return TableSpec(database, "orders", "s3://curated/sales/orders", columns, parts)


def test_create_then_add_columns_only(aws):
    aws.glue.create_database(DatabaseInput={"Name": "sales"})
    assert check_table(aws.glue, spec()) is None
    assert ensure_table(aws.glue, spec()) == []
    assert ensure_table(aws.glue, spec()) == []  # repeated: nothing to do
    wider = spec(columns=(*COLUMNS, ("channel", "string")))
    assert ensure_table(aws.glue, wider) == ["channel"]
    table = aws.glue.get_table(DatabaseName="sales", Name="orders")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["order_id", "amount", "channel"]
    # the contract may drop a column: the table keeps it (older files still hold it)
    assert ensure_table(aws.glue, spec(columns=COLUMNS[:1])) == []
    assert add_partitions(aws.glue, spec(), [(("2026-11-01", "run-1"), "s3://curated/x/")]) == 1
    assert add_partitions(aws.glue, spec(), [(("2026-11-01", "run-1"), "s3://curated/x/")]) == 0


@pytest.mark.parametrize(("changed", "message"), [
    (spec(columns=(("order_id", "bigint"), ("amount", "decimal(14,2)"))),
     r"sales.orders.amount is decimal\(12,2\) in the catalog, the job would write decimal\(14,2\)"),
    (spec(parts=(("lake_run_id", "string"),)), r"sales.orders is partitioned by \[\('order_date', 'date'\)"),
])
def test_conflicts_are_refused_without_changing_the_table(aws, changed, message):
    aws.glue.create_database(DatabaseInput={"Name": "sales"})
    ensure_table(aws.glue, spec())
    before = aws.glue.get_table(DatabaseName="sales", Name="orders")["Table"]["StorageDescriptor"]["Columns"]
    for check in (check_table, ensure_table):
        with pytest.raises(SchemaConflict, match=message):
            check(aws.glue, changed)
    assert aws.glue.get_table(DatabaseName="sales", Name="orders")["Table"]["StorageDescriptor"]["Columns"] == before


def test_a_missing_database_is_named(aws):
    with pytest.raises(SchemaConflict, match="Glue database 'sales' does not exist"):
        check_table(aws.glue, spec())


def test_added_columns_keep_what_others_set_on_the_table(aws):
    """Parameters, column comments and the description set by others (a data owner, a PII tag)
    stay when the job appends a column."""
    aws.glue.create_database(DatabaseInput={"Name": "sales"})
    ensure_table(aws.glue, spec())
    table = aws.glue.get_table(DatabaseName="sales", Name="orders")["Table"]
    sd = table["StorageDescriptor"]
    sd["Columns"][1]["Comment"] = "gross, in the order's currency"
    aws.glue.update_table(DatabaseName="sales", TableInput={
        "Name": "orders", "Description": "Orders from the ERP", "TableType": table["TableType"],
        "PartitionKeys": table["PartitionKeys"], "StorageDescriptor": sd,
        "Parameters": {**table["Parameters"], "data_owner": "finance", "pii": "false"}})
    assert ensure_table(aws.glue, spec(columns=(*COLUMNS, ("channel", "string")))) == ["channel"]
    after = aws.glue.get_table(DatabaseName="sales", Name="orders")["Table"]
    assert after["Parameters"]["data_owner"] == "finance" and after["Parameters"]["pii"] == "false"
    assert after["Parameters"]["classification"] == "parquet" and after["Description"] == "Orders from the ERP"
    assert [(c["Name"], c.get("Comment")) for c in after["StorageDescriptor"]["Columns"]] == [
        ("order_id", None), ("amount", "gross, in the order's currency"), ("channel", None)]
    assert after["StorageDescriptor"]["Location"] == "s3://curated/sales/orders"
