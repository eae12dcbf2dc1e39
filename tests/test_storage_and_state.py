"""Storage adapters (local tree and S3 through moto) and the DynamoDB state store."""

from __future__ import annotations

import hashlib
import time

import pytest

from lake_ingest import DatasetLocked, StateStore
from lake_ingest._state import LOCK_ID, RUNNING, LedgerEntry, file_id
from lake_ingest._storage import LocalStorage, S3Storage, join


def test_local_storage_lists_with_md5_etags(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.csv").write_bytes(b"hello")
    (tmp_path / "a" / "y.csv").write_bytes(b"")
    store = LocalStorage()
    objs = {o.key: o for o in store.list(str(tmp_path), "a/")}
    assert sorted(objs) == ["a/b/x.csv", "a/y.csv"]
    assert objs["a/b/x.csv"].etag == hashlib.md5(b"hello").hexdigest() and objs["a/b/x.csv"].size == 5
    assert [(o.key, o.size, o.etag) for o in store.list(str(tmp_path), "a/b/", etags=False)] == [("a/b/x.csv", 5, "")]
    assert store.read_range(objs["a/b/x.csv"].uri, 1, 3) == b"ell"
    assert store.read_range(objs["a/b/x.csv"].uri, -2, 2) == b"lo"
    assert list(store.list(str(tmp_path), "missing/")) == []
    assert store.delete_prefix(str(tmp_path / "a")) == 2 and not (tmp_path / "a").exists()


def test_local_listing_reads_only_the_files_it_keeps(tmp_path, monkeypatch):
    """A filter on keys is applied before any ETag is computed: files of other datasets under
    the same prefix are never read."""
    from lake_ingest import _storage

    for name, body in {"in/a.csv": b"one", "in/b.json": b"two", "in/c.csv": b"three"}.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(body)
    hashed = []
    real_md5 = _storage._md5
    monkeypatch.setattr(_storage, "_md5", lambda path: hashed.append(path.name) or real_md5(path))
    objs = list(LocalStorage().list(str(tmp_path), "in/", keep=lambda key: key.endswith(".csv")))
    assert [(o.key, o.etag) for o in objs] == [("in/a.csv", hashlib.md5(b"one").hexdigest()),
                                               ("in/c.csv", hashlib.md5(b"three").hexdigest())]
    assert sorted(hashed) == ["a.csv", "c.csv"]


def test_s3_storage_matches_local_behaviour(aws):
    s3 = aws.s3
    s3.create_bucket(Bucket="raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="raw", Key="erp/orders/o1.csv", Body=b"hello")
    s3.put_object(Bucket="raw", Key="erp/orders/sub/o2.csv", Body=b"world!")
    s3.put_object(Bucket="raw", Key="erp/other.csv", Body=b"-")
    store = S3Storage(s3)
    objs = {o.key: o for o in store.list("s3://raw", "erp/orders/")}
    assert sorted(objs) == ["erp/orders/o1.csv", "erp/orders/sub/o2.csv"]
    assert objs["erp/orders/o1.csv"].etag == hashlib.md5(b"hello").hexdigest()
    assert objs["erp/orders/o1.csv"].uri == "s3://raw/erp/orders/o1.csv"
    assert store.read_range("s3://raw/erp/orders/sub/o2.csv", 0, 3) == b"wor"
    assert store.read_range("s3://raw/erp/orders/sub/o2.csv", -2, 2) == b"d!"
    rooted = {o.key for o in store.list("s3://raw/erp", "orders/")}
    assert rooted == {"orders/o1.csv", "orders/sub/o2.csv"}
    kept = [o.key for o in store.list("s3://raw/erp", "orders/", keep=lambda key: "/sub/" not in key)]
    assert kept == ["orders/o1.csv"]  # keep sees the key relative to the root, as for local files
    assert store.delete_prefix("s3://raw/erp/orders") == 2
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="raw")["Contents"]] == ["erp/other.csv"]


def test_join():
    assert join("s3://b/", "/x/", "y") == "s3://b/x/y"
    assert join("/tmp/lake", "", "z") == "/tmp/lake/z"


@pytest.fixture
def store(aws, deployed, settings):
    return StateStore(aws.dynamodb, settings.ledger_table, settings.runs_table)


def test_ledger_conditional_write(store):
    entry = LedgerEntry(file_id("k", "e"), "k", "e", 10, "INGESTED", "run-a")
    assert store.record_file("d", entry) is True
    assert store.record_file("d", entry) is True  # the same run may repeat (commit recovery)
    assert store.record_file("d", LedgerEntry(entry.file_id, "k", "e", 10, "INGESTED", "run-b")) is False
    assert store.ledger("d")[entry.file_id].run_id == "run-a"


def test_lock_is_exclusive_until_released_or_expired(store):
    with store.dataset_lock("d", "a", 60):
        with pytest.raises(DatasetLocked, match="locked by run a"), store.dataset_lock("d", "b", 60):
            pass
        with store.dataset_lock("d", "a", 60):  # re-entrant for the same holder
            pass
    assert store.get_run("d", LOCK_ID) is None
    with store.dataset_lock("d", "b", 60):
        assert store.get_run("d", LOCK_ID)["holder"] == "b"
    with store.dataset_lock("d", "old", 0):
        time.sleep(1.1)
        with store.dataset_lock("d", "new", 60):  # an expired lease can be taken over
            assert store.get_run("d", LOCK_ID)["holder"] == "new"


def test_a_local_removal_takes_what_another_process_removed_meanwhile(tmp_path, monkeypatch):
    """Two attempts of a run may clean one folder at once: a file already gone is no error."""
    import os

    for name in ("a.parquet", "b.parquet"):
        (tmp_path / "run" / "x").mkdir(parents=True, exist_ok=True)
        (tmp_path / "run" / "x" / name).write_bytes(b"1")
    real_unlink = os.unlink

    def the_other_process_first(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)  # removed by the other process...
        real_unlink(path, *args, **kwargs)  # ...then by this one: FileNotFoundError

    monkeypatch.setattr(os, "unlink", the_other_process_first)
    assert LocalStorage().delete_prefix(str(tmp_path / "run")) == 2
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(os, "unlink", lambda *a, **k: (_ for _ in ()).throw(PermissionError("denied")))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "c.parquet").write_bytes(b"1")
    with pytest.raises(PermissionError):  # any other error still stops the removal
        LocalStorage().delete_prefix(str(tmp_path / "run"))


def test_only_the_attempt_that_took_a_lock_last_releases_it(store):
    """Two attempts of run r1 alive together: the later takes the lock over (the holder is the
    run id); the earlier one's release must not free the dataset under it."""
    with store.dataset_lock("d", "r1", 60, attempt="a"):
        with store.dataset_lock("d", "r1", 60, attempt="b"):
            pass  # b ends first here, and took the lock last: it releases it
        assert store.get_run("d", LOCK_ID) is None
    earlier = store.dataset_lock("d", "r1", 60, attempt="a")
    earlier.__enter__()
    with store.dataset_lock("d", "r1", 60, attempt="b"):
        earlier.__exit__(None, None, None)  # a ends while b runs
        assert (store.get_run("d", LOCK_ID)["holder"], store.get_run("d", LOCK_ID)["attempt"]) == ("r1", "b")
        with pytest.raises(DatasetLocked, match="locked by run r1"), store.dataset_lock("d", "r2", 60):
            pass
    assert store.get_run("d", LOCK_ID) is None


def test_a_lock_that_cannot_be_released_keeps_the_runs_outcome(store, monkeypatch, caplog):
    """A release that DynamoDB refuses (throttled, credentials gone) is logged: the run's own error
    still propagates, a run that succeeded still succeeds, and the lease frees the dataset."""
    from botocore.exceptions import ClientError

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DeleteItem")

    with pytest.raises(ValueError, match="the run's own error"), store.dataset_lock("d", "r1", 60, attempt="a"):
        monkeypatch.setattr(store.ddb, "delete_item", throttled)
        raise ValueError("the run's own error")
    assert "lock of d not released (ClientError: An error occurred (ThrottlingException)" in caplog.text
    assert store.get_run("d", LOCK_ID)["holder"] == "r1"  # left to its lease
    with store.dataset_lock("d", "r1", 60, attempt="b"):
        pass  # the same run id takes it again; this release fails too, and nothing is raised
    assert caplog.text.count("not released") == 2
    monkeypatch.undo()
    with pytest.raises(DatasetLocked), store.dataset_lock("d", "r2", 60):
        pass


def test_run_records(store):
    store.start_run("d", "r1", {"contract_version": 2})
    store.update_run("d", "r1", {"rows_read": 5, "rule_violations": {"x": 1}, "ratio": 0.5})
    rec = store.get_run("d", "r1")
    assert (rec["status"], rec["rows_read"], rec["rule_violations"], rec["ratio"]) == (RUNNING, 5, {"x": 1}, 0.5)
    store.update_run("d", "r1", {"status": "SUCCEEDED", "ratio": None}, expect_status=RUNNING)
    assert "ratio" not in store.get_run("d", "r1")
    with pytest.raises(store.ddb.exceptions.ConditionalCheckFailedException):
        store.update_run("d", "r1", {"status": "FAILED"}, expect_status=RUNNING)
    with pytest.raises(store.ddb.exceptions.ConditionalCheckFailedException):
        store.start_run("d", "r1", {})  # a succeeded run id cannot be started again
    assert [r["run_id"] for r in store.runs("d")] == ["r1"]


def test_s3_storage_reports_an_archived_object_apart_from_a_missing_one(aws):
    from lake_ingest._storage import ArchivedObjectError

    s3 = aws.s3
    s3.create_bucket(Bucket="raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="raw", Key="old/o1.csv", Body=b"hello", StorageClass="DEEP_ARCHIVE")
    store = S3Storage(s3)
    with pytest.raises(ArchivedObjectError, match=r"old/o1\.csv"):
        store.read_range("s3://raw/old/o1.csv", 0, 3)
    with pytest.raises(FileNotFoundError):
        store.read_range("s3://raw/old/gone.csv", 0, 3)


def test_s3_storage_reports_a_forbidden_object_as_a_permission_error(aws, monkeypatch):
    """An access denial on the read (a bucket policy, an ACL, an object under a KMS key the job may
    not use) is a PermissionError naming the object and S3's reason; other errors, other 403s
    among them (a clock that is off), stay S3's."""
    from botocore.exceptions import ClientError

    s3 = aws.s3
    s3.create_bucket(Bucket="raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="raw", Key="in/o1.csv", Body=b"hello")
    store = S3Storage(s3)
    answers = iter([(403, "AccessDenied", "User is not authorized to perform: kms:Decrypt"),
                    (403, "KMS.DisabledException", "The key is disabled"),
                    (403, "RequestTimeTooSkewed", "The difference between the request time and the current time is "
                                                  "too large"),
                    (503, "SlowDown", "")])

    def refused(**kwargs):
        status, code, message = next(answers)
        raise ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    monkeypatch.setattr(s3, "get_object", refused)
    with pytest.raises(PermissionError, match=r"^s3://raw/in/o1\.csv: AccessDenied: User is not authorized to perform: "
                                              r"kms:Decrypt$"):
        store.read_range("s3://raw/in/o1.csv", 0, 3)
    with pytest.raises(PermissionError, match=r"^s3://raw/in/o1\.csv: KMS\.DisabledException: The key is disabled$"):
        store.read_range("s3://raw/in/o1.csv", 0, 3)
    for code in ("RequestTimeTooSkewed", "SlowDown"):
        with pytest.raises(ClientError, match=code):
            store.read_range("s3://raw/in/o1.csv", 0, 3)


def test_s3_delete_retries_the_keys_s3_did_not_delete_then_names_them(aws, monkeypatch):
    """DeleteObjects answers 200 and lists the keys it could not delete: they are retried, and
    a key still refused after the last attempt is an error, not a count of deleted files."""
    from botocore.stub import Stubber

    from lake_ingest import _storage
    from lake_ingest._storage import DELETE_ATTEMPTS

    monkeypatch.setattr(_storage, "DELETE_BACKOFF_SECONDS", 0.0)
    s3 = aws.s3
    listing = {"Contents": [{"Key": f"run/x/{i}.parquet"} for i in range(3)], "IsTruncated": False,
               "KeyCount": 3}
    refused = {"Key": "run/x/1.parquet", "Code": "SlowDown", "Message": "Please reduce your request rate."}
    with Stubber(s3) as stub:
        stub.add_response("list_objects_v2", listing, {"Bucket": "b", "Prefix": "run/x/"})
        stub.add_response("delete_objects", {"Errors": [refused]})
        stub.add_response("delete_objects", {}, {"Bucket": "b", "Delete": {"Objects": [{"Key": "run/x/1.parquet"}],
                                                                         "Quiet": True}})
        assert S3Storage(s3).delete_prefix("s3://b/run/x") == 3
        stub.assert_no_pending_responses()
    with Stubber(s3) as stub:
        stub.add_response("list_objects_v2", listing, {"Bucket": "b", "Prefix": "run/x/"})
        for _ in range(DELETE_ATTEMPTS):
            stub.add_response("delete_objects", {"Errors": [refused]})
        with pytest.raises(OSError, match=r"refused to delete 1 objects .*run/x/1.parquet: SlowDown"):
            S3Storage(s3).delete_prefix("s3://b/run/x")


def test_s3_content_id_is_a_full_object_checksum(aws):
    """The content id ignores how the bytes were uploaded: the same bytes under one key give the
    same id whatever their ETag. Per-part (composite) checksums are not used; a 32-bit one (the
    SDKs' default) is, with the size, when nothing stronger is there."""
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from lake_ingest._storage import ObjectInfo

    s3 = aws.s3
    s3.create_bucket(Bucket="raw", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="raw", Key="a.csv", Body=b"hello", ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket="raw", Key="b.csv", Body=b"hello", ChecksumAlgorithm="CRC32")
    store = S3Storage(s3)
    objs = {o.key: o for o in store.list("s3://raw")}
    assert store.content_id(objs["a.csv"]) == "sha256:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
    assert store.content_id(objs["b.csv"]) == "crc32:NhCmhg==:5"
    obj = ObjectInfo("s3://raw/x.csv", "x.csv", 5, "etag")
    heads = [({"ChecksumCRC64NVME": "AAAAAAAAAAA=", "ChecksumType": "FULL_OBJECT"}, "crc64nvme:AAAAAAAAAAA="),
             ({"ChecksumSHA256": "abc=-3", "ChecksumType": "COMPOSITE"}, ""),
             ({"ChecksumSHA256": "abc=-3"}, ""),
             ({"ChecksumSHA1": "def="}, "sha1:def="),
             ({"ChecksumCRC32": "NhCmhg==", "ChecksumSHA256": "abc=", "ChecksumType": "FULL_OBJECT"}, "sha256:abc="),
             ({"ChecksumCRC32C": "mnG7TA==", "ChecksumType": "FULL_OBJECT"}, "crc32c:mnG7TA==:5"),
             ({"ChecksumCRC32": "AAAAAA==-2", "ChecksumType": "COMPOSITE"}, ""),
             ({}, ""),
             ({"ChecksumSHA1": "def=", "ETag": '"other"'}, "")]  # replaced since the listing
    for head, expected in heads:
        with Stubber(s3) as stub:
            stub.add_response("head_object", {"ETag": '"etag"', **head},
                              {"Bucket": "raw", "Key": "x.csv", "ChecksumMode": "ENABLED"})
            assert store.content_id(obj) == expected, head
    for status in (403, 404):
        with Stubber(s3) as stub:
            stub.add_client_error("head_object", http_status_code=status)
            assert store.content_id(obj) == ""  # no id: the key and ETag decide, as before
    with Stubber(s3) as stub:  # not "no id": a new ETag of the same bytes would be taken for new bytes
        stub.add_client_error("head_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(ClientError, match="SlowDown"):
            store.content_id(obj)


def test_local_content_id_is_the_md5_of_the_bytes(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"hello")
    store = LocalStorage()
    [obj] = store.list(str(tmp_path))
    assert store.content_id(obj) == "md5:" + hashlib.md5(b"hello").hexdigest()
    assert LocalStorage().content_id(obj) == store.content_id(obj)  # computed when not listed


def test_a_run_record_lists_failed_files_up_to_a_byte_budget():
    """500 failed files with reasons of 500 two-byte characters would take about 530 KB, more
    than a DynamoDB item holds: the record lists the first ones and counts the rest."""
    from lake_ingest._job import MAX_LISTED_FAILURES_BYTES, RunResult, _record

    failed = {f"erp/orders/orders_{i:04d}.csv.gz": "é" * 500 for i in range(500)}
    record = _record(RunResult("orders", "r1", files_failed=500, failed_files=failed))
    listed = record["failed_files"]
    assert sum(len(k.encode()) + len(v.encode()) for k, v in listed.items()) <= MAX_LISTED_FAILURES_BYTES
    assert 0 < len(listed) < 500 and list(listed) == list(failed)[:len(listed)]
    assert record["failed_files_unlisted"] == 500 - len(listed) and record["files_failed"] == 500
    few = _record(RunResult("orders", "r1", files_failed=1, failed_files={"a.csv": "empty header"}))
    assert few["failed_files"] == {"a.csv": "empty header"} and few["failed_files_unlisted"] == 0
