"""Object storage behind one small interface: S3 on AWS, a directory tree on a laptop."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

logger = logging.getLogger(__name__)


class ArchivedObjectError(OSError):
    """The object is in an archive storage class (S3 Glacier Flexible Retrieval, Deep Archive)
    and must be restored before it can be read."""


#: S3's checksums of an object that may serve as its content id, in the order they are preferred.
_CHECKSUMS = ("CRC64NVME", "SHA256", "SHA1", "CRC32C", "CRC32")
#: The 32-bit ones: the AWS SDKs and CLI send CRC32 by default, so most uploads carry one and
#: nothing stronger. A corrected file under the same key and of the same size is taken for the
#: file it corrects (and not ingested) when the two share the CRC: for bytes that differ at random,
#: one correction in about 4.3 billion (a change confined to 32 consecutive bits or fewer is always
#: seen). Without it, each re-delivery of the same bytes under the raw bucket's SSE-KMS, whose
#: ETags are no digest of the bytes, would be ingested again. The size is part of their id.
_WEAK_CHECKSUMS = ("CRC32C", "CRC32")

#: Attempts of DeleteObjects for the keys S3 reports as not deleted (throttling, a lock).
DELETE_ATTEMPTS = 3
DELETE_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its URI, its key below the listed root, size and ETag."""

    uri: str
    key: str
    size: int
    etag: str


class Storage(Protocol):
    def list(self, root: str, prefix: str = "", etags: bool = True,
             keep: Callable[[str], bool] | None = None) -> Iterator[ObjectInfo]:
        """The objects below ``root/prefix`` in key order, with keys relative to ``root``;
        only those whose key passes ``keep`` when it is given."""
        ...

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        """Bytes of an object (a negative ``start`` counts from its end); FileNotFoundError when
        it is gone, ArchivedObjectError when it must be restored first, PermissionError when the
        job may not read it."""
        ...

    def content_id(self, obj: ObjectInfo) -> str:
        """An id of the object's bytes alone (a checksum), or "" when the store has none."""
        ...

    def put_bytes(self, uri: str, data: bytes) -> None:
        """Store a small object whole (readers see the old one or the new one, never a part)."""
        ...

    def get_bytes(self, uri: str) -> bytes:
        """A small object's bytes; FileNotFoundError when there is none."""
        ...

    def delete_prefix(self, uri: str) -> int:
        """Delete every object below ``uri`` (as a folder); the number deleted."""
        ...

    def delete(self, uri: str) -> None:
        """Delete one object (nothing happens when there is none)."""
        ...


def join(root: str, *parts: str) -> str:
    """Join URI or path segments with single slashes."""
    out = root.rstrip("/")
    for p in parts:
        if p:
            out = f"{out}/{p.strip('/')}"
    return out


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


class LocalStorage:
    """A directory tree laid out like the buckets; the ETag is the MD5 of the content, as S3
    reports it for objects uploaded in one part. S3 lists ETags for free, here they cost a read
    of every file: ``etags=False`` skips them (empty) where only names and sizes matter, and
    files that ``keep`` leaves out are never read."""

    def __init__(self) -> None:
        self._digests: dict[str, str] = {}  # path -> MD5 of the content, from the listings

    def list(self, root: str, prefix: str = "", etags: bool = True,
             keep: Callable[[str], bool] | None = None) -> Iterator[ObjectInfo]:
        base = Path(_local_path(root))
        if not base.is_dir():  # as S3 answers NoSuchBucket: a mistyped zone is no empty one
            raise FileNotFoundError(f"{root} is not a directory: a zone's root must exist, as a bucket must")
        start = base / prefix if prefix else base
        if not start.exists():
            return
        paths = [Path(dirpath) / name for dirpath, dirnames, filenames in _sorted_walk(start) for name in filenames]
        keyed = [(path.relative_to(base).as_posix(), path) for path in paths]
        kept = [(key, path) for key, path in keyed if keep is None or keep(key)]
        if not etags:
            digests: Iterable[str] = [""] * len(kept)
        else:  # hashlib releases the GIL: hash a few files at a time, in listing order
            with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
                digests = list(pool.map(_md5, [path for _, path in kept]))
        for (key, path), digest in zip(kept, digests, strict=True):
            if digest:
                self._digests[str(path)] = digest
            yield ObjectInfo(uri=str(path), key=key, size=path.stat().st_size, etag=digest)

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        with open(_local_path(uri), "rb") as fh:
            if start < 0:
                size = os.fstat(fh.fileno()).st_size
                fh.seek(max(0, size + start))
            else:
                fh.seek(start)
            return fh.read(length)

    def content_id(self, obj: ObjectInfo) -> str:
        """The MD5 of the file's bytes (the listing's, or computed now)."""
        digest = self._digests.get(obj.uri) or _md5(Path(_local_path(obj.uri)))
        return f"md5:{digest}" if digest else ""  # unreadable: no id, as S3 gives none

    def put_bytes(self, uri: str, data: bytes) -> None:
        path = Path(_local_path(uri))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # whole or not at all, as an S3 PUT

    def get_bytes(self, uri: str) -> bytes:
        return Path(_local_path(uri)).read_bytes()

    def delete_prefix(self, uri: str) -> int:
        path = Path(_local_path(uri))
        if not path.exists():
            return 0
        count = sum(len(files) for _, _, files in os.walk(path))
        shutil.rmtree(path, onerror=_gone_is_fine)
        return count

    def delete(self, uri: str) -> None:
        Path(_local_path(uri)).unlink(missing_ok=True)


class S3Storage:
    """S3 through a boto3 client (so moto or a real account can be injected)."""

    def __init__(self, s3_client: Any) -> None:
        self.s3 = s3_client

    def list(self, root: str, prefix: str = "", etags: bool = True,
             keep: Callable[[str], bool] | None = None) -> Iterator[ObjectInfo]:
        bucket, root_key = _split_s3(root)
        root_key = root_key.rstrip("/")
        # below the root as a folder: a root s3://lake/raw must not list s3://lake/raw-archive/...
        full_prefix = (f"{root_key}/{prefix}" if root_key else prefix)
        if prefix.endswith("/") and not full_prefix.endswith("/"):
            full_prefix += "/"
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=full_prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                rel = key[len(root_key) :].lstrip("/") if root_key else key
                if keep is not None and not keep(rel):
                    continue
                yield ObjectInfo(uri=f"s3://{bucket}/{key}", key=rel, size=int(obj["Size"]),
                                 etag=str(obj["ETag"]).strip('"'))

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        bucket, key = _split_s3(uri)
        if length <= 0:
            return b""
        rng = f"bytes=-{-start}" if start < 0 else f"bytes={start}-{start + length - 1}"
        try:
            resp = self.s3.get_object(Bucket=bucket, Key=key, Range=rng)
        except self.s3.exceptions.NoSuchKey:  # removed since it was listed: as a local file would
            raise FileNotFoundError(uri) from None
        except self.s3.exceptions.InvalidObjectState:  # in S3 Glacier Flexible Retrieval or Deep Archive
            raise ArchivedObjectError(uri) from None
        except self.s3.exceptions.ClientError as exc:
            # Access denied to this object (the bucket policy, its ACL, or a KMS key the job may
            # not use), as a local file's permissions would. Other 403s (a request signed with a
            # clock that is off, credentials gone) are the job's, not the object's: raised.
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "AccessDenied" or code.startswith("KMS."):
                raise PermissionError(f"{uri}: {code}: {error.get('Message', '')}".rstrip(": ")) from None
            raise
        return bytes(resp["Body"].read())

    def put_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = _split_s3(uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256")

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = _split_s3(uri)
        try:
            return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            raise FileNotFoundError(uri) from None

    def content_id(self, obj: ObjectInfo) -> str:
        """The object's full-object checksum, ``<algorithm>:<base64>`` (with ``:<size>`` for a
        32-bit one, see ``_WEAK_CHECKSUMS``), or "" when it has none.

        S3 keeps the checksum an uploader sends (the AWS SDKs and CLI send CRC32 by default) and
        adds a CRC64NVME one to every object uploaded without: unlike the ETag, it depends on the
        bytes alone, not on the upload (a multipart upload's ETag differs from a single PUT's,
        and an SSE-KMS object's ETag is no digest of its content). Checksums of multipart uploads
        made per part ('...-3') depend on the part sizes and are not used."""
        bucket, key = _split_s3(obj.uri)
        try:
            head = self.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except self.s3.exceptions.ClientError as exc:
            # Refused or gone: no checksum then, the ledger falls back to the key and ETag (and the
            # file's read says what is wrong). Any other error is raised: taken for "no checksum",
            # a throttled HEAD would let a delivery of the same bytes with a new ETag in again.
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") not in (403, 404):
                raise
            logger.warning("could not read the checksum of %s: %s", obj.uri, exc)
            return ""
        if obj.etag and str(head.get("ETag", "")).strip('"') != obj.etag:
            return ""  # replaced since it was listed: this checksum is another delivery's
        for algorithm in _CHECKSUMS:
            value = head.get(f"Checksum{algorithm}")
            if value and (head.get("ChecksumType") == "FULL_OBJECT"
                          or (head.get("ChecksumType") is None and not re.search(r"-\d+$", value))):
                size = f":{obj.size}" if algorithm in _WEAK_CHECKSUMS else ""
                return f"{algorithm.lower()}:{value}{size}"
        return ""

    def delete_prefix(self, uri: str) -> int:
        """Delete every object below ``uri``; raises ``OSError`` naming the keys S3 refused to
        delete (DeleteObjects answers 200 and lists them), after retrying them."""
        bucket, key = _split_s3(uri)
        prefix = key.rstrip("/") + "/"
        deleted = 0
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys = [o["Key"] for o in page.get("Contents", [])]
            for attempt in range(DELETE_ATTEMPTS):
                if not keys:
                    break
                resp = self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys],
                                                                     "Quiet": True})
                errors = resp.get("Errors", [])
                deleted += len(keys) - len(errors)
                keys = [e["Key"] for e in errors]
                if keys and attempt == DELETE_ATTEMPTS - 1:
                    first = errors[0]
                    raise OSError(f"S3 refused to delete {len(keys)} objects below s3://{bucket}/{prefix}, "
                                  f"e.g. {first['Key']}: {first.get('Code')} {first.get('Message', '')}".rstrip())
                if keys:  # a SlowDown, most often: back off before the retry
                    time.sleep(DELETE_BACKOFF_SECONDS * 2**attempt)
        return deleted

    def delete(self, uri: str) -> None:
        bucket, key = _split_s3(uri)
        self.s3.delete_object(Bucket=bucket, Key=key)


def storage_for(uri: str, s3_client_factory: Any = None) -> Storage:
    """Pick the storage that serves a URI: ``s3://`` needs an S3 client, anything else is local."""
    if is_s3(uri):
        if s3_client_factory is None:
            raise ValueError(f"an S3 client is needed for {uri}")
        return S3Storage(s3_client_factory())
    return LocalStorage()


def _split_s3(uri: str) -> tuple[str, str]:
    """Bucket and key of ``s3://bucket/key``. Not ``urlparse``: an object key may hold '#' and
    '?', which a URL parser takes for a fragment and a query."""
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key.lstrip("/")


def _local_path(uri: str) -> str:
    return urlparse(uri).path if uri.startswith("file:") else uri


def _sorted_walk(start: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames.sort()
        yield dirpath, dirnames, sorted(filenames)


def _gone_is_fine(func: Any, path: str, exc_info: Any) -> None:
    """``shutil.rmtree``'s error handler: a file or folder that another process removed meanwhile
    (two attempts of a run cleaning the same prefix) is what was wanted."""
    if not issubclass(exc_info[0], FileNotFoundError):
        raise exc_info[1]


def _md5(path: Path) -> str:
    """The file's MD5 (S3's ETag of a single-part upload), or "" when it may not be read: its
    read then says why (``read_range``), for that file alone."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(4 << 20), b""):
                digest.update(chunk)
    except PermissionError:
        return ""
    return digest.hexdigest()  # (never empty: "" above means no digest)
