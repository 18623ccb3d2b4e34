"""The object store under the landing zone: a local directory or a prefix of an S3 bucket.

The landing zone (:mod:`mev_assets.ingest.landing`) speaks only in *keys*: posix paths relative
to the store's root, such as ``mempool/window=<key>/<collector_id>-000001.parquet``. A store
maps them to files or to objects:

* :class:`LocalStore` - a directory. ``put`` is write-to-temp + fsync + ``rename`` + directory
  fsync, so a reader sees the whole file or nothing; temp names start with ``.`` and listings
  skip them. ``append`` is supported (quarantine lines).
* :class:`S3Store` - ``s3://<bucket>/<prefix>/`` through boto3. A PUT is atomic (the object
  appears whole or not at all), so "write a temp file and rename it" is a single PUT. S3 has no
  append: writers that append locally write one new object per flush instead (see
  :meth:`LandingZone.append_quarantine`).

Failures of the S3 API surface as :class:`StoreError` (an ``OSError``) and missing keys as
``FileNotFoundError``, so callers handle a flaky network the way they handle a flaky disk.
Credentials are never handled here: boto3 reads them from the standard AWS environment
variables, profiles or instance roles.
"""

from __future__ import annotations

import io
import os
import posixpath
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


class StoreError(OSError):
    """An object-store request failed (network, permissions, throttling after retries)."""


@dataclass(frozen=True)
class StoredObject:
    """A file or object of a store: its key (relative to the store's root) and size in bytes.

    Objects of a :class:`LocalStore` also carry their ``path`` and are ``os.PathLike`` (pyarrow
    and ``open`` take them; polars wants ``obj.path``); objects of an S3 store have no path and
    are read through their store (:meth:`LandingZone.read_segment` serves both).
    """

    key: str
    size: int
    path: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    def __fspath__(self) -> str:
        if self.path is None:
            raise TypeError(f"{self.key} is an object-store key, not a local file; read it through its LandingZone")
        return str(self.path)


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(name: str) -> str:
    # starts with "." (skipped by listings and by lake/landing globs), unique per process+thread
    return f".tmp-{name}-{os.getpid()}-{os.urandom(4).hex()}"


class ObjectStore(ABC):
    """Keyed, atomically written blobs. Keys are posix paths relative to :attr:`location`."""

    appendable: bool = False

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store's root is, for people: a directory or an ``s3://`` URL."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where ``key`` is, for people and for engines that read the files themselves."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` to ``key`` atomically (readers see all of it or nothing)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The content of ``key``; ``FileNotFoundError`` when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; False when it did not exist."""

    @abstractmethod
    def move(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst`` (``dst`` is complete before ``src`` disappears)."""

    @abstractmethod
    def list(self, prefix: str) -> list[StoredObject]:
        """Objects directly under the "directory" ``prefix``, sorted by key."""

    @abstractmethod
    def list_dirs(self, prefix: str, start_at: str | None = None) -> list[str]:
        """Names of the sub-"directories" directly under ``prefix``, sorted; with ``start_at``,
        only names sorting at or after it (cheap on S3: the listing starts there)."""

    @abstractmethod
    def walk(self, prefix: str, start_at: str | None = None) -> list[StoredObject]:
        """Every object below ``prefix`` at any depth, sorted by key (one paginated listing on
        S3); with ``start_at``, only those whose first path component below ``prefix`` sorts
        at or after it."""

    def append(self, key: str, data: bytes) -> None:
        raise StoreError(f"{self.location} does not support appending; write a new object per flush")

    def local_path(self, key: str) -> Path:
        raise StoreError(f"{self.url(key)} is not on the local filesystem")

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.get(key)), columns=columns)


class LocalStore(ObjectStore):
    """A directory on the local filesystem."""

    appendable = True

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def url(self, key: str) -> str:
        return str(self.local_path(key))

    def local_path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def put(self, key: str, data: bytes) -> None:
        path = self.local_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / _temp_name(path.name)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def append(self, key: str, data: bytes) -> None:
        path = self.local_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def get(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.local_path(key).exists()

    def delete(self, key: str) -> bool:
        try:
            self.local_path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def move(self, src: str, dst: str) -> None:
        target = self.local_path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.local_path(src), target)

    def _entries(self, prefix: str) -> list[os.DirEntry]:
        try:
            with os.scandir(self.local_path(prefix)) as it:
                return [e for e in it if not e.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list(self, prefix: str) -> list[StoredObject]:
        found = []
        for e in self._entries(prefix):
            try:
                if e.is_file():
                    found.append(StoredObject(join_key(prefix, e.name), e.stat().st_size, Path(e.path)))
            except FileNotFoundError:
                continue  # moved away while we listed (a quarantined segment)
        return sorted(found, key=lambda o: o.key)

    def list_dirs(self, prefix: str, start_at: str | None = None) -> list[str]:
        names = sorted(e.name for e in self._entries(prefix) if e.is_dir())
        return [n for n in names if n >= start_at] if start_at is not None else names

    def walk(self, prefix: str, start_at: str | None = None) -> list[StoredObject]:
        base = self.local_path(prefix)
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            top = dirpath == str(base)
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and not (top and start_at is not None and d < start_at)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            rel = "" if rel == "." else rel
            for name in filenames:
                if top and start_at is not None and name < start_at:
                    continue
                if not name.startswith("."):
                    try:
                        size = os.stat(os.path.join(dirpath, name)).st_size
                    except FileNotFoundError:
                        continue  # moved away while we walked (a quarantined segment)
                    found.append(StoredObject(join_key(rel, name), size, Path(dirpath, name)))
        return sorted(found, key=lambda o: o.key)

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(self.local_path(key), columns=columns)


def s3_client(endpoint_url: str | None = None, region: str | None = None):
    """A boto3 S3 client with standard retries; credentials from the usual AWS chain."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        # path-style works with every S3-compatible server (MinIO, moto, Ceph) and with AWS
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config)


class S3Store(ObjectStore):
    """``s3://<bucket>/<prefix>/`` through a boto3 S3 client (any S3-compatible endpoint)."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        from botocore.exceptions import BotoCoreError, ClientError

        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._errors = (BotoCoreError, ClientError)
        self._client_error = ClientError

    @property
    def location(self) -> str:
        return f"s3://{join_key(self.bucket, self.prefix)}"

    def _full(self, key: str) -> str:
        return join_key(self.prefix, key)

    def _dir(self, prefix: str) -> str:
        full = self._full(prefix)
        return f"{full}/" if full else ""

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def _fail(self, op: str, key: str, exc: Exception) -> OSError:
        if isinstance(exc, self._client_error):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return FileNotFoundError(f"no object {self.url(key)}")
        return StoreError(f"S3 {op} of {self.url(key)} failed: {exc}")

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)
        except self._errors as exc:
            raise self._fail("PUT", key, exc) from None

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
        except self._errors as exc:
            raise self._fail("GET", key, exc) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            return True
        except self._errors as exc:
            err = self._fail("HEAD", key, exc)
            if isinstance(err, FileNotFoundError):
                return False
            raise err from None

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except self._errors as exc:
            raise self._fail("DELETE", key, exc) from None
        return existed

    def move(self, src: str, dst: str) -> None:
        try:
            self.client.copy_object(
                Bucket=self.bucket, Key=self._full(dst), CopySource={"Bucket": self.bucket, "Key": self._full(src)}
            )
            self.client.delete_object(Bucket=self.bucket, Key=self._full(src))
        except self._errors as exc:
            raise self._fail("COPY", src, exc) from None

    def _pages(self, prefix: str, **kwargs):
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            yield from paginator.paginate(Bucket=self.bucket, Prefix=self._dir(prefix), **kwargs)
        except self._errors as exc:
            raise self._fail("LIST", prefix, exc) from None

    def _objects(self, prefix: str, **kwargs) -> list[StoredObject]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        found = []
        for page in self._pages(prefix, **kwargs):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.endswith("/"):  # "directory" markers some tools create
                    found.append(StoredObject(key[strip:], int(obj["Size"])))
        return sorted(found, key=lambda o: o.key)

    def list(self, prefix: str) -> list[StoredObject]:
        return self._objects(prefix, Delimiter="/")

    def _start_after(self, prefix: str, start_at: str | None) -> dict:
        # every key of "<prefix>/<start_at>..." sorts after "<prefix>/<start_at>" itself
        return {"StartAfter": self._dir(prefix) + start_at} if start_at else {}

    def list_dirs(self, prefix: str, start_at: str | None = None) -> list[str]:
        base = self._dir(prefix)
        names = []
        for page in self._pages(prefix, Delimiter="/", **self._start_after(prefix, start_at)):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(base):].rstrip("/"))
        return sorted(n for n in names if start_at is None or n >= start_at)

    def walk(self, prefix: str, start_at: str | None = None) -> list[StoredObject]:
        found = self._objects(prefix, **self._start_after(prefix, start_at))
        if start_at is None:
            return found
        skip = len(join_key(prefix)) + 1 if join_key(prefix) else 0
        return [o for o in found if o.key[skip:].split("/", 1)[0] >= start_at]


def open_store(settings, area: str) -> ObjectStore:
    """The store of ``area`` (``landing``, ...) for ``settings.storage``: ``$MEV_HOME/<area>``
    locally, ``s3://<bucket>/<prefix>/<area>`` in s3 mode."""
    if settings.storage == "s3":
        return S3Store(s3_client(settings.s3_endpoint_url, settings.s3_region), settings.s3_bucket, join_key(settings.s3_prefix, area))
    return LocalStore(settings.mev_home / area)
