"""Spark I/O: the key columns read for finding repeated keys match the full read, row for row."""

from __future__ import annotations

import gzip

import pytest

from lake_ingest import Contract
from lake_ingest._reader import ReadGroup, read_files, read_key_columns
from lake_ingest._transforms import CORRUPT_COL


def contract(**options) -> Contract:
    return Contract.from_dict({
        "dataset_id": "k",
        "source": {"prefix": "k/", "pattern": "*.csv*"},
        "format": {"type": "csv", "options": options},
        "columns": [{"name": "note", "type": "string"}, {"name": "id", "type": "string", "nullable": False},
                    {"name": "tail", "type": "string"}],
        "primary_key": ["id"],
        "target": {"database": "db", "table": "k"},
    })


# The key is the second field: quotes, escapes and delimiters inside the first field, and empty
# or quoted-empty keys, must give the values the CSV parser gives.
LINES = [
    "note,id,tail",
    "plain,a1,x",
    '"has, comma",a2,x',
    '"has ""quote""",a3,x',
    'back\\slash,a4,x',
    '"q",  a5  ,x',
    "empty,,x",
    'quoted empty,"",x',
    '"multi, part","a, 6",x',
    "plain,a1,again",
    "short",
]


def both(spark, tmp_path, lines, charset="utf-8", gz=False, **options):
    body = ("\n".join(lines) + "\n").encode(charset)
    path = tmp_path / ("part.csv.gz" if gz else "part.csv")
    path.write_bytes(gzip.compress(body) if gz else body)
    c = contract(**options)
    groups = [ReadGroup((str(path),), ("note", "id", "tail"))]
    full = read_files(spark, groups, c).select("id", CORRUPT_COL).collect()
    keys = [r["id"] for r in read_key_columns(spark, groups, c, ["id"]).collect()]
    return full, keys


def well_formed(full):
    return [r["id"] for r in full if r[CORRUPT_COL] is None]


@pytest.mark.parametrize("gz", [False, True])
def test_key_values_of_csv_lines_equal_the_full_read_plus_the_header(spark, tmp_path, gz):
    full, keys = both(spark, tmp_path, LINES, gz=gz)
    # the last line has too few fields: the parser reads its key as null
    assert well_formed(full) == ["a1", "a2", "a3", "a4", "  a5  ", None, None, "a, 6", "a1", None]
    # line by line, after the header, every well-formed row has the same key
    assert keys[0] == "id"
    assert [k for k, r in zip(keys[1:], full, strict=True) if r[CORRUPT_COL] is None] == well_formed(full)


def test_key_values_with_another_delimiter_and_quote(spark, tmp_path):
    lines = ["note;id;tail", "'a;b';k1;x", "c;k2;x", "'it''s';k3;x"]
    full, keys = both(spark, tmp_path, lines, delimiter=";", quote="'", escape="'")
    assert well_formed(full) == ["k1", "k2", "k3"]
    assert keys == ["id", "k1", "k2", "k3"]


def test_other_encodings_use_the_csv_reader(spark, tmp_path):
    lines = ["note,id,tail", "caf\u00e9,\u00e9t\u00e9,x", "b,k2,x"]
    full, keys = both(spark, tmp_path, lines, charset="latin-1", encoding="ISO-8859-1")
    assert well_formed(full) == ["\u00e9t\u00e9", "k2"]
    assert keys == well_formed(full)  # the CSV reader skips the header


def test_records_over_several_lines_use_the_csv_reader(spark, tmp_path):
    # read as lines, the record's second line would give the key ' k0"' and the first none
    lines = ["note,id,tail", '"two\nlines, k0",k1,x', "b,k2,x"]
    full, keys = both(spark, tmp_path, lines, multiline=True)
    assert well_formed(full) == ["k1", "k2"]
    assert keys == well_formed(full)


@pytest.mark.parametrize("delimiter", [",", "¦"])  # "¦": one character of two bytes
def test_a_key_in_the_last_field_after_multibyte_text(spark, tmp_path, delimiter):
    """The key's field is found by bytes: characters of several bytes before it, a line that
    ends at the key, one that stops short of it and an empty key read as in the CSV parser."""
    rows = [["note", "id", "tail"], ["été ☃", "ü", "k1"], ["a", "b", "k2"], ["a", "b"],
            ["a", "b", ""], ["é", "b", "ké"], ["a"]]
    path = tmp_path / "last.csv"
    path.write_text("".join(delimiter.join(r) + "\n" for r in rows), encoding="utf-8")
    c = contract(delimiter=delimiter)
    groups = [ReadGroup((str(path),), ("note", "id", "tail"))]
    full = [r["tail"] for r in read_files(spark, groups, c).collect()]
    keys = [r["tail"] for r in read_key_columns(spark, groups, c, ["tail"]).collect()]
    assert full == ["k1", "k2", None, None, "ké", None]
    assert keys == ["tail", *full]


def test_a_group_without_the_key_column_gives_nulls(spark, tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("note,tail\na,x\nb,y\n")
    c = contract()
    keys = read_key_columns(spark, [ReadGroup((str(path),), ("note", "tail"))], c, ["id"]).collect()
    assert [r["id"] for r in keys] == [None, None, None]


def test_layout_groups_and_crlf_lines(spark, tmp_path):
    """Each group cuts its key at its own position; Windows line ends read the same way."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_bytes(b"note,id,tail\r\nx,k1,t\r\ny,k2,t\r\n")
    second.write_bytes(b"id,tail,note\r\nk2,t,z\r\nk3,t,w\r\n")
    c = contract()
    groups = [ReadGroup((str(first),), ("note", "id", "tail")), ReadGroup((str(second),), ("id", "tail", "note"))]
    full = read_files(spark, groups, c).select("id", CORRUPT_COL).collect()
    keys = [r["id"] for r in read_key_columns(spark, groups, c, ["id"]).collect()]
    assert well_formed(full) == ["k1", "k2", "k2", "k3"]
    assert sorted(keys) == sorted([*well_formed(full), "id", "id"])


@pytest.mark.parametrize("key", ["erp/orders/a.csv", "erp/orders//a.csv", "/erp/a.csv", "erp/./a.csv",
                                 "erp/../a.csv", "erp/orders/..a.csv", "erp/.hidden/a.csv", "erp/a b#1?.csv"])
def test_rewritten_by_spark_agrees_with_hadoop_path(spark, key):
    """The keys the job refuses are exactly those Hadoop's Path turns into another path."""
    from lake_ingest._reader import rewritten_by_spark

    uri = f"s3://bucket/{key}"
    opened = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri).toString()
    assert rewritten_by_spark(key) == (opened != uri), opened


def test_the_default_escape_is_rfc_4180(spark, tmp_path):
    """Doubled quotes inside a quoted field are one quote, and a backslash is a character: with
    Spark's default escape (a backslash) the first came through as raw text and the second ran
    the field on past its closing quote."""
    lines = ["note,id,tail", '"27"" monitor",a1,x', '"C:\\temp\\",a2,x', '"Smith, ""Jr""",a3,x']
    path = tmp_path / "part.csv"
    path.write_text("\n".join(lines) + "\n")
    c = contract()
    assert (c.format.quote, c.format.escape) == ('"', '"')
    rows = read_files(spark, [ReadGroup((str(path),), ("note", "id", "tail"))], c).collect()
    assert [(r["note"], r["id"], r[CORRUPT_COL]) for r in rows] == [
        ('27" monitor', "a1", None), ("C:\\temp\\", "a2", None), ('Smith, "Jr"', "a3", None)]


def test_json_line_keys_lists_every_key_and_every_line_that_is_not_one_record(spark):
    from lake_ingest._reader import JSON_ARRAY_LINE, json_line_keys

    lines = [("a", '{"id": 1, "score": NaN}'), ("a", ""), ("a", "   "), ("b", '\t[{"id": 1}, {"id": 2}]'),
             ("c", '{"id": 1, "id": 2, "x": 1}'), ("d", '\ufeff{"id": 1, "é": Infinity}'),
             ("d", '{"é": 2, "id": 3}'), ("d", '{"id": 4}')]  # other lists of the same keys
    rows = json_line_keys(spark.createDataFrame(lines, "file string, value string")).collect()
    found = {(r["file"], r["key"], r["problem"]) for r in rows}
    assert len(rows) == len(found)  # each once
    assert found == {("a", "id", None), ("a", "score", None), ("a", None, None),
                     ("b", None, JSON_ARRAY_LINE),
                     ("c", "id", None), ("c", "x", None),  # a repeated key is not looked for
                     ("d", "id", None), ("d", "é", None)}
