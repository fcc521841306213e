"""Writing files so that a reader never sees half of one: every file ffnlp writes goes through here.

A file is written to a temporary name in its own folder, flushed to the disk (fsync) and renamed
over the target (``os.replace``, atomic on POSIX): a process killed at any moment leaves either
the old file or the new one. The temporary file gets the permissions any new file would get
(0666 less the umask, e.g. 0644), not the 0600 of ``tempfile.mkstemp``.

Failures become one :class:`~ffnlp.errors.OutputError` naming the path: a full disk (with the
bytes needed, when they are known, and the bytes free), a folder or a symbolic link where the
file should be, a read-only place. A symbolic link is never written through: replacing the link
would be harmless, but following it could overwrite a file outside the run folder, and either is
a surprise, so the write is refused. With ``within`` (a run folder), the folders between it and
the file (``plots/``, ``checkpoint/``) are checked the same way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ffnlp.errors import OutputError

# errno values that mean "the disk (or the user's quota) is full"
_FULL = (errno.ENOSPC, errno.EDQUOT)

_UMASK_LOCK = threading.Lock()


def resolved(path: str | Path) -> str:
    """A path as an error message names it: an absolute one as it is; a relative one with the
    folder it was resolved against (paths on the command line and inside config files are
    relative to the working folder)."""
    p = Path(path)
    if p.is_absolute():
        return str(p)
    return f"{p} (resolved against the working folder {Path.cwd()}: {Path.cwd() / p})"


def new_file_mode() -> int:
    """The permissions of a newly created file under this process's umask now (e.g. 0o644)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # elsewhere it can only be read by setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full (OSError ENOSPC/EDQUOT, or a library's wrapper of it,
    e.g. safetensors' or torch's error text)."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return True
    text = str(exc)
    return "No space left on device" in text or "StorageFull" in text or "Disk quota" in text


def free_bytes(path: str | Path) -> int | None:
    """Bytes free on the file system holding ``path`` (its nearest existing folder)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def output_error(exc: BaseException, path: str | Path, needed: int | None = None) -> OutputError:
    """The one-line error for a failed write of ``path``."""
    if is_disk_full(exc):
        free = free_bytes(path)
        sizes = []
        if needed is not None:
            sizes.append(f"{needed:,} bytes needed")
        if free is not None:
            sizes.append(f"{free:,} bytes free")
        detail = f" ({', '.join(sizes)})" if sizes else ""
        return OutputError(
            f"no space left on the device to write {path}{detail}; free some space or write "
            "somewhere else. Nothing was left half-written"
        )
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else path
        return OutputError(f"cannot write {where}: {exc.strerror}")
    return OutputError(f"cannot write {path}: {exc}")


def check_target(path: str | Path, within: str | Path | None = None) -> Path:
    """Refuse to write ``path`` when it is a folder or a symbolic link, or when a folder between
    ``within`` and it is a symbolic link; return it as a Path."""
    path = Path(path)
    if within is not None:
        try:
            inside = path.relative_to(within)
        except ValueError:
            inside = None
        if inside is not None:
            current = Path(within)
            for part in inside.parts[:-1]:
                current = current / part
                if current.is_symlink():
                    raise OutputError(
                        f"{current} is a symbolic link; ffnlp does not write through links inside "
                        "a run folder (it could overwrite files elsewhere). Remove the link and "
                        "try again"
                    )
    if path.is_symlink():
        raise OutputError(
            f"{path} is a symbolic link; ffnlp does not write through links (it could overwrite "
            "a file elsewhere). Remove the link and try again"
        )
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give the path of a file to write")
    return path


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened/synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(
            f"cannot write {path}: a file stands where a folder of its path should be"
        ) from None
    except OSError as exc:
        raise output_error(exc, path) from None


def _temporary(path: Path) -> tuple[int, Path]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise output_error(exc, path) from None
    os.fchmod(fd, new_file_mode())
    return fd, Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    _fsync_folder(path.parent)


@contextlib.contextmanager
def atomic_writer(
    path: str | Path, mode: str = "wb", within: str | Path | None = None, encoding: str = "utf-8"
) -> Iterator[IO[Any]]:
    """A file object for ``path``, written to a temporary file that replaces ``path`` when the
    block ends without an error (and is removed when it raises)."""
    target = check_target(path, within)
    _make_parent(target)
    fd, tmp = _temporary(target)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(exc, target) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(
    path: str | Path, data: str | bytes | bytearray | memoryview, within: str | Path | None = None
) -> Path:
    """Write ``data`` (text is encoded as UTF-8) to ``path`` atomically; return the path."""
    payload = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
    target = check_target(path, within)
    _make_parent(target)
    fd, tmp = _temporary(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(exc, target, payload.nbytes) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_atomic_with(
    path: str | Path,
    write: Callable[[str], None],
    within: str | Path | None = None,
    needed: int | None = None,
) -> Path:
    """Atomically write ``path`` with a library function that takes a file name (``write(tmp)``,
    e.g. safetensors' ``save_file``); ``needed`` is the expected size, for the disk-full message."""
    target = check_target(path, within)
    _make_parent(target)
    fd, tmp = _temporary(target)
    os.close(fd)
    try:
        write(str(tmp))
        with open(tmp, "rb+") as fh:  # the library closed it: sync what it wrote
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode())  # a library may have recreated the file with its own mode
        _publish(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) or is_disk_full(exc):
            raise output_error(exc, target, needed) from None
        raise
    return target


def append_line(path: str | Path, line: str, within: str | Path | None = None) -> None:
    """Append ``line`` (a newline is added) to a log such as metrics.jsonl; a write that fails
    (a full disk) is undone, so the log never ends in half a line."""
    target = check_target(path, within)
    data = (line + "\n").encode("utf-8")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise output_error(exc, target, len(data)) from None
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise output_error(exc, target, len(data)) from None
    finally:
        os.close(fd)
