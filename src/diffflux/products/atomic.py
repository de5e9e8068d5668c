"""Atomic file writes: a product is either complete under its final name or absent.

Every product is written to a temporary file in the destination folder (same file system, so the final
``os.replace`` is an atomic rename), flushed and ``fsync``-ed, then renamed over the final name; the folder
is ``fsync``-ed after the rename so the new entry survives a crash. If anything fails on the way (a full
disk, ``ENOSPC``; a quota; an exception in the writer) the temporary file is removed and a
:class:`ProductError` names the file and the cause. An earlier version of the file, if any, is left as it
was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o644
"""Permissions of finished products (temporary files are created 0600)."""


class ProductError(OSError):
    """An output product could not be written (names the file or folder and the cause).

    Attributes:
        path: the file or folder concerned.
        cause: the underlying exception (also chained as ``__cause__``).
    """

    def __init__(
        self, message: str, path: str | os.PathLike | None = None, cause: BaseException | None = None
    ):
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.cause = cause
        if isinstance(cause, OSError):
            self.errno = cause.errno

    def __str__(self) -> str:
        return str(self.args[0])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on device ({exc})"
    if isinstance(exc, OSError) and exc.errno == errno.EDQUOT:
        return f"disk quota exceeded ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _temp_path(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse directory fsync
        pass
    finally:
        os.close(fd)


def _finish(tmp: Path, path: Path) -> None:
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def atomic_save(path: str | os.PathLike, writer_fn: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically with ``writer_fn(temporary_path)`` (for writers that need a file name,
    such as netCDF or ``savefig``).

    The writer must create or overwrite the file it is given. Returns ``path``.

    Raises:
        ProductError: the writer, the ``fsync`` or the rename failed; the temporary file is gone and
            ``path`` is unchanged.
    """
    path = Path(path)
    try:
        tmp = _temp_path(path)
    except OSError as exc:
        raise ProductError(
            f"cannot create a temporary file for {str(path)!r} in folder {str(path.parent)!r}: "
            f"{_describe(exc)}",
            path,
            exc,
        ) from exc
    try:
        writer_fn(tmp)
        _fsync_file(tmp)
        _finish(tmp, path)
    except BaseException as exc:
        _discard(tmp)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise ProductError(f"could not write {str(path)!r}: {_describe(exc)}", path, exc) from exc
    return path


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO]:
    """Context manager yielding a file object whose content appears under ``path`` only on success.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8 unless ``encoding`` says otherwise). On an exception
    inside the block, or a failing flush/``fsync``/rename, the temporary file is removed and
    :class:`ProductError` is raised (KeyboardInterrupt and SystemExit pass through after the clean-up).
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write: mode must be 'w', 'wt' or 'wb', found {mode!r}")
    path = Path(path)
    binary = "b" in mode
    try:
        tmp = _temp_path(path)
    except OSError as exc:
        raise ProductError(
            f"cannot create a temporary file for {str(path)!r} in folder {str(path.parent)!r}: "
            f"{_describe(exc)}",
            path,
            exc,
        ) from exc
    try:
        kwargs = {} if binary else {"encoding": encoding or "utf-8", "newline": newline}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _finish(tmp, path)
    except BaseException as exc:
        _discard(tmp)
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise ProductError(f"could not write {str(path)!r}: {_describe(exc)}", path, exc) from exc


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file atomically; returns ``path``."""
    with atomic_write(path, "w", newline="") as fh:
        fh.write(text)
    return Path(path)


def check_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder if it is missing and prove it writable (call before any computation).

    Writability is tested by creating and removing a file (permission bits alone mislead: root ignores
    them, read-only mounts and quotas do not show in them).

    Raises:
        ProductError: naming the folder and why it cannot be used.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ProductError(f"output folder {str(folder)!r} exists but is not a folder", folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProductError(
            f"cannot create output folder {str(folder)!r}: {_describe(exc)}", folder, exc
        ) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".diffflux-write-test.", dir=folder)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ProductError(
            f"output folder {str(folder)!r} is not writable: {_describe(exc)}", folder, exc
        ) from exc
    return folder
