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


# the hidden folders of runs being written, and the folder each is to become (the one the user
# named): a message about a file in a hidden folder names it as the user will find it
_SHOWN_AS: dict[str, str] = {}


def show_as(hidden: Path, shown: Path) -> None:
    """Name files under ``hidden`` as under ``shown`` in messages, until :func:`forget_shown`."""
    _SHOWN_AS[str(hidden)] = str(shown)


def forget_shown(hidden: Path) -> None:
    _SHOWN_AS.pop(str(hidden), None)


def as_named(path: object) -> str:
    """``path`` as a message names it: a file of a run being written in its hidden folder
    (see :mod:`ffnlp.folders.transaction`) under the folder the user named."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    if not isinstance(text, str):
        return str(path)
    for hidden, user in _SHOWN_AS.items():
        if text == hidden or text.startswith(hidden + os.sep):
            return user + text[len(hidden) :]
    return text


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
            f"no space left on the device to write {as_named(path)}{detail}; free some space or write "
            "somewhere else. Nothing was left half-written"
        )
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else path
        return OutputError(f"cannot write {as_named(where)}: {exc.strerror}")
    return OutputError(f"cannot write {as_named(path)}: {exc}")


def os_error_line(exc: OSError) -> str:
    """One line for an OSError that no one turned into its own message: the disk-full message of
    :func:`output_error`, else the path (both paths of a rename) and what the system said."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    if is_disk_full(exc):
        return str(output_error(exc, paths[0] if paths else "a file"))
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{' -> '.join(paths)}: {what}" if paths else what


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
                        f"{as_named(current)} is a symbolic link; ffnlp does not write through links inside "
                        "a run folder (it could overwrite files elsewhere). Remove the link and "
                        "try again"
                    )
    if path.is_symlink():
        raise OutputError(
            f"{as_named(path)} is a symbolic link; ffnlp does not write through links (it could overwrite "
            "a file elsewhere). Remove the link and try again"
        )
    if path.is_dir():
        raise OutputError(f"{as_named(path)} is a folder; give the path of a file to write")
    if path.exists() and not path.is_file():
        raise OutputError(
            f"{as_named(path)} is not a regular file (a device, a pipe or a socket); ffnlp replaces the "
            "files it writes, so give the path of a regular file"
        )
    return path


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened/synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_folders(folder: str | Path, path: str | Path | None = None) -> list[Path]:
    """Make ``folder`` and its missing parents; return those this call made, outermost first
    (for :func:`remove_made`). A file where a folder should be, or any other failure, is an
    OutputError naming ``path`` (default: ``folder``), and nothing made is left behind."""
    folder = Path(folder)
    named = as_named(folder if path is None else path)
    missing = []
    p = folder
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    if p.is_symlink() and not p.exists():
        raise OutputError(f"cannot write {named}: {as_named(p)} is a broken symbolic link")
    if p.exists() and not p.is_dir():
        raise OutputError(
            f"cannot write {named}: {as_named(p)} is a file, where a folder of its path should be"
        )
    made: list[Path] = []
    for q in reversed(missing):
        try:
            q.mkdir()
        except FileExistsError:
            if q.is_dir():
                continue  # made by someone else meanwhile
            remove_made(made)
            raise OutputError(
                f"cannot write {named}: {as_named(q)} is a file, where a folder of its path should be"
            ) from None
        except OSError as exc:
            remove_made(made)
            raise output_error(exc, q if path is None else Path(path)) from None
        made.append(q)
    return made


def remove_made(made: list[Path]) -> None:
    """Remove the folders :func:`make_folders` made, innermost first, while they are empty (one
    that is not empty any more holds someone else's files: it and its parents stay)."""
    for q in reversed(made):
        try:
            q.rmdir()
        except OSError:
            break


def _make_parent(path: Path) -> list[Path]:
    return make_folders(path.parent, path)


def _temporary(path: Path, keep_suffix: bool = False) -> tuple[int, Path]:
    """A new temporary file beside ``path``; ``keep_suffix``: its name ends as ``path``'s does
    (``.png``), for a library that picks the format by the name."""
    if keep_suffix:
        prefix, suffix = f".{path.stem}.tmp-", path.suffix
    else:
        prefix, suffix = f".{path.name}.", ".tmp"
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise OutputError(
                f"cannot write {as_named(path)}: its name is too long to be written safely (ffnlp writes "
                "a file under a longer temporary name beside it first); choose a shorter name"
            ) from None
        raise output_error(exc, path) from None
    os.fchmod(fd, new_file_mode())
    return fd, Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def _stage(
    target: Path,
    fill: Callable[[int, Path], None],
    needed: Callable[[], int | None] = lambda: None,
    keep_suffix: bool = False,
) -> tuple[Path, list[Path]]:
    """``target``'s folders made, and a temporary file beside it that ``fill(fd, tmp)`` writes
    (and closes), synced to the disk. Returns (the temporary file, the folders made); on any
    failure both are removed again, an OSError becoming an OutputError naming ``target``."""
    made = _make_parent(target)
    try:
        fd, tmp = _temporary(target, keep_suffix)
    except BaseException:
        remove_made(made)
        raise
    try:
        fill(fd, tmp)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        remove_made(made)
        if isinstance(exc, OSError) or (isinstance(exc, Exception) and is_disk_full(exc)):
            raise output_error(exc, target, needed()) from None
        raise
    return tmp, made


def _fill_bytes(payload: memoryview) -> Callable[[int, Path], None]:
    def fill(fd: int, tmp: Path) -> None:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())

    return fill


def _fill_with(write: Callable[[str], None]) -> Callable[[int, Path], None]:
    def fill(fd: int, tmp: Path) -> None:
        os.close(fd)
        write(str(tmp))
        with open(tmp, "rb+") as fh:  # the library closed it: sync what it wrote
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode())  # a library may have recreated the file with its own mode

    return fill


def _publish_staged(tmp: Path, target: Path, made: list[Path], needed: int | None = None) -> None:
    try:
        _publish(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        remove_made(made)
        raise output_error(exc, target, needed) from None


@contextlib.contextmanager
def atomic_writer(
    path: str | Path, mode: str = "wb", within: str | Path | None = None, encoding: str = "utf-8"
) -> Iterator[IO[Any]]:
    """A file object for ``path``, written to a temporary file that replaces ``path`` when the
    block ends without an error (and is removed when it raises, with the folders it made)."""
    target = check_target(path, within)
    made = _make_parent(target)
    try:
        fd, tmp = _temporary(target)
    except BaseException:
        remove_made(made)
        raise
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        remove_made(made)
        raise output_error(exc, target) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_made(made)
        raise


def write_atomic(
    path: str | Path, data: str | bytes | bytearray | memoryview, within: str | Path | None = None
) -> Path:
    """Write ``data`` (text is encoded as UTF-8) to ``path`` atomically; return the path. On a
    failure the old file stays as it was and the folders this call made are removed."""
    payload = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
    target = check_target(path, within)
    tmp, made = _stage(target, _fill_bytes(payload), lambda: payload.nbytes)
    _publish_staged(tmp, target, made, payload.nbytes)
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
    tmp, made = _stage(target, _fill_with(write), lambda: needed)
    _publish_staged(tmp, target, made, needed)
    return target


class Outputs:
    """The files one command writes, all of them or none: each is written in full to a
    temporary file beside its target (its folders made as needed), and :meth:`commit` renames
    them all into place at the end. A failure before that (:meth:`abort`, or an exception out
    of a ``with Outputs() as outputs:`` block) removes the temporary files and every folder made,
    so the old files stay as they were and a new path stays free. Targets are checked with
    :func:`check_target` (no folder, no symbolic link) when staged and again when published."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path, str | Path | None]] = []
        self._made: list[Path] = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def folder(self, path: str | Path) -> Path:
        """Make the folder ``path`` (and its parents); removed again by :meth:`abort`."""
        self._made += make_folders(path)
        return Path(path)

    def write(
        self,
        path: str | Path,
        data: str | bytes | bytearray | memoryview,
        within: str | Path | None = None,
    ) -> Path:
        """Stage ``data`` (text as UTF-8) for ``path``."""
        payload = memoryview(data.encode("utf-8") if isinstance(data, str) else data)
        return self._add(path, _fill_bytes(payload), within, lambda: payload.nbytes)

    def write_with(
        self, path: str | Path, write: Callable[[str], Any], within: str | Path | None = None
    ) -> Path:
        """Stage what ``write(name)`` writes to a file name (one that ends as ``path`` does, for
        a library that picks the format by the suffix)."""
        return self._add(path, _fill_with(write), within, lambda: None, keep_suffix=True)

    def _add(
        self,
        path: str | Path,
        fill: Callable[[int, Path], None],
        within: str | Path | None,
        needed: Callable[[], int | None],
        keep_suffix: bool = False,
    ) -> Path:
        target = check_target(path, within)
        try:
            tmp, made = _stage(target, fill, needed, keep_suffix)
        except BaseException:
            self.abort()
            raise
        self._made += made
        self._staged.append((tmp, target, within))
        return target

    def commit(self) -> None:
        """Put every staged file in place."""
        try:
            for tmp, target, within in self._staged:
                check_target(target, within)  # nothing became a link meanwhile
                try:
                    _publish(tmp, target)
                except OSError as exc:
                    raise output_error(exc, target) from None
        except BaseException:
            self.abort()
            raise
        self._staged, self._made = [], []

    def abort(self) -> None:
        """Remove the staged files not yet in place and the folders made."""
        for tmp, _, _ in self._staged:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        self._staged = []
        remove_made(self._made)
        self._made = []


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
