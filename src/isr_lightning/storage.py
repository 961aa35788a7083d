"""Object storage: which paths are URLs, reads that retry, uploads, and a bounded local copy.

Everything remote goes through fsspec (``s3://`` needs ``s3fs``, installed with the package;
``gs://``, ``az://``... need their fsspec package). S3 settings come from the standard AWS
variables that boto3 and s3fs read: ``AWS_ENDPOINT_URL`` (an S3-compatible server such as
SeaweedFS or MinIO), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``.

A read that fails for a reason that can pass (the store restarting, a dropped connection) is
retried with backoff for :data:`RETRY_SECONDS`; then :class:`StorageError` names the URL.
LitData's own S3 client is not used: its transfers go through obstore, which refuses plain
``http://`` endpoints, so the same code could not be tested against a local server.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import fsspec

__all__ = [
    "DEFAULT_CACHE_GB",
    "RETRY_SECONDS",
    "FileCache",
    "StorageError",
    "default_cache_dir",
    "is_url",
    "join",
    "local_copy",
    "read_bytes",
    "remove",
    "stamp",
    "upload_folder",
    "url_exists",
    "write_bytes",
]

log = logging.getLogger(__name__)

RETRY_SECONDS = float(os.environ.get("ISR_LIGHTNING_RETRY_SECONDS", 120))
"""How long a read keeps retrying a store that does not answer before it fails
(``$ISR_LIGHTNING_RETRY_SECONDS``, default 120)."""

DEFAULT_CACHE_GB = 50.0
"""The size a local copy of remote shards is kept under, by default (``--data.cache_gb``)."""

T = TypeVar("T")


class StorageError(OSError):
    """A URL could not be read or written (its message names the URL and the cause)."""


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL (``scheme://``) other than ``file://``."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def join(base: str, *parts: str) -> str:
    """``base`` joined with ``parts``: ``/`` for URLs, the OS separator for local paths."""
    return posixpath.join(base, *parts) if is_url(base) else os.path.join(base, *parts)


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:  # the protocol's fsspec package is missing
        raise StorageError(f"cannot open {url}: {err}") from err


_CONFIGURATION_ERRORS = ("NoCredentialsError", "PartialCredentialsError")  # botocore's: no waiting fixes them


def _transient(err: BaseException) -> bool:
    """Whether ``err`` may pass on a retry (not: no permission, a folder, a bad request, no credentials)."""
    if type(err).__name__ in _CONFIGURATION_ERRORS:
        return False
    return not isinstance(err, PermissionError | IsADirectoryError | ValueError)


def _retry(url: str, action: Callable[[], T], retry_seconds: float = RETRY_SECONDS) -> T:
    deadline, delay = time.monotonic() + retry_seconds, 0.5
    while True:
        try:
            return action()
        except FileNotFoundError:  # it will not appear: not retried, and kept a FileNotFoundError
            raise
        except Exception as err:
            if not _transient(err) or time.monotonic() + delay > deadline:
                raise StorageError(f"cannot read {url}: {err!r}") from err
            log.warning("reading %s failed (%r); retrying in %.1f s", url, err, delay)
            time.sleep(delay)
            delay = min(2 * delay, 8.0)
            _filesystem(url)[0].invalidate_cache()


def read_bytes(url: str, retry_seconds: float = RETRY_SECONDS) -> bytes:
    """The bytes of a local file or URL, retrying transient failures.

    Raises:
        FileNotFoundError: there is no such file.
        StorageError: the store did not answer within ``retry_seconds``.
    """
    fs, path = _filesystem(url)
    return _retry(url, lambda: fs.cat_file(path), retry_seconds)


def url_exists(url: str, retry_seconds: float = RETRY_SECONDS) -> bool:
    """Whether a local file or URL exists (no cached listing), retrying transient failures."""
    fs, path = _filesystem(url)
    fs.invalidate_cache()
    return _retry(url, lambda: fs.exists(path), retry_seconds)


def stamp(url: str, retry_seconds: float = RETRY_SECONDS) -> str:
    """What changes when the file or object at ``url`` is written again: size, modification time, ETag.

    Raises:
        FileNotFoundError: there is no such file.
        StorageError: the store did not answer within ``retry_seconds``.
    """
    fs, path = _filesystem(url)
    fs.invalidate_cache()
    info = _retry(url, lambda: fs.info(path), retry_seconds)
    return "|".join(str(info.get(key, "")) for key in ("size", "LastModified", "mtime", "ETag"))


def _writing(url: str, action: Callable[[fsspec.AbstractFileSystem, str], object]) -> None:
    fs, path = _filesystem(url)
    try:
        if not is_url(url):
            fs.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        action(fs, path)
    except Exception as err:
        raise StorageError(f"cannot write {url}: {err!r}") from err


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` to a local file (atomically: a temporary file renamed) or a URL."""
    if is_url(url):
        _writing(url, lambda fs, path: fs.pipe_file(path, data))
        return
    tmp = f"{url}.{uuid.uuid4().hex}.tmp"
    _writing(tmp, lambda fs, path: fs.pipe_file(path, data))
    os.replace(tmp, url)


def remove(url: str) -> None:
    """Delete a local file or an object (nothing when it does not exist)."""
    fs, path = _filesystem(url)
    if fs.exists(path):
        fs.rm_file(path)


def upload_folder(local: str | os.PathLike[str], url: str, last: tuple[str, ...] = ()) -> int:
    """Copy every file under ``local`` to ``url``, the names in ``last`` after all others.

    Args:
        local: the folder to copy.
        url: the destination folder (local path or URL).
        last: relative paths written last (an index whose presence marks a complete folder).

    Returns:
        Bytes copied.
    """
    files = sorted(p for p in Path(local).rglob("*") if p.is_file())
    files.sort(key=lambda p: p.relative_to(local).as_posix() in last)
    for p in files:
        _writing(join(url, *p.relative_to(local).parts), lambda fs, path, p=p: fs.put_file(str(p), path))
    return sum(p.stat().st_size for p in files)


@contextlib.contextmanager
def local_copy(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path to read ``path`` from: itself, or a temporary copy of a URL (deleted on exit).

    Raises:
        FileNotFoundError: there is no such file.
        StorageError: the store did not answer.
    """
    if not is_url(path):
        yield Path(os.fspath(path).removeprefix("file://")).expanduser()
        return
    name = posixpath.basename(os.fspath(path)) or "download"
    with tempfile.TemporaryDirectory(prefix="isr-") as folder:
        local = Path(folder) / name
        local.write_bytes(read_bytes(os.fspath(path)))
        yield local


def default_cache_dir() -> Path:
    """``$ISR_LIGHTNING_CACHE``, else ``~/.cache/isr-lightning``."""
    return Path(os.environ.get("ISR_LIGHTNING_CACHE") or Path.home() / ".cache" / "isr-lightning")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class FileCache:
    """A local copy of the files of one remote folder, fetched on first use, bounded in size.

    Every process of a machine may share the folder: a file is downloaded to a temporary name
    and renamed, and the least recently used files are deleted when the folder grows past
    ``max_bytes`` (a reader whose file was just evicted fetches it again). A copy is kept per
    ``version`` of the remote folder: a copy made for another version (an earlier extraction to
    the same URL) is deleted, never read.

    Args:
        url: the remote folder.
        cache_dir: the parent of all cached folders (``None``: :func:`default_cache_dir`
            ``/store``); this folder's copy is ``cache_dir/<hash of url>/<hash of version>``.
        max_bytes: the size the copy is kept under (the file being fetched is always kept).
        pinned: names never evicted (an index the reader opens once).
        version: what changes when the remote folder is written again (e.g. the :func:`stamp`
            of its index).
    """

    def __init__(
        self,
        url: str,
        cache_dir: str | os.PathLike[str] | None = None,
        max_bytes: float = DEFAULT_CACHE_GB * 1e9,
        pinned: tuple[str, ...] = (),
        version: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        base = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "store"
        copies = base / _digest(self.url)
        self.folder = copies / _digest(version)
        self.max_bytes, self.pinned = max_bytes, pinned
        for other in copies.glob("*"):
            if other != self.folder:
                log.info("deleting %s: a local copy of an earlier version of %s", other, self.url)
                if other.is_dir():
                    shutil.rmtree(other, ignore_errors=True)
                else:  # a file of the layout before versions
                    other.unlink(missing_ok=True)

    def path(self, name: str) -> str:
        """The local path of remote file ``name`` (relative to the folder), fetched if absent."""
        local = self.folder / name
        if local.is_file():
            os.utime(local)  # most recently used
            return str(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        data = read_bytes(join(self.url, name))
        self._evict(len(data))
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(local)
        return str(local)

    def _evict(self, incoming: int) -> None:
        files = [p for p in self.folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
        files = [p for p in files if p.relative_to(self.folder).as_posix() not in self.pinned]
        stats: list[tuple[float, int, Path]] = []
        for p in files:
            try:
                st = p.stat()
            except FileNotFoundError:  # another process evicted it
                continue
            stats.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in stats) + incoming
        for _, size, p in sorted(stats, key=lambda s: s[0]):
            if total <= self.max_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size
            log.info("evicted %s from the local copy of %s", p.name, self.url)
