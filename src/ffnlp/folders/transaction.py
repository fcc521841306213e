"""A training run's folder as a transaction: it appears complete, or not at all.

A training command writes into a hidden sibling of its run folder, ``.OUT.tmp-<pid>``: empty for
a new run, a copy of the run to continue for ``--resume``. When the command succeeds the sibling
takes the place of ``OUT`` (renamed, or swapped with the old run, which is then deleted); when it
fails the sibling is removed, so an existing run is left exactly as it was and a new path stays
free. An existing ``OUT`` is refused unless the command resumes it (``--resume``) or replaces it
(``--force``: the new run replaces the old one as a whole, stale plots and all, once it is
complete).

An interrupted command (Ctrl-C, SIGTERM) whose run has a checkpoint keeps it, so that ``--resume``
continues it: in ``OUT`` (a new or resumed run), or in ``OUT.interrupted`` beside the untouched
old run when a ``--force`` was replacing it. It holds :data:`MARKER` and no summary.json. A
process killed outright (SIGKILL, power loss) leaves its hidden sibling: when ``OUT`` does not
exist, ``--resume OUT`` adopts it (and a new run into ``OUT`` is refused); otherwise the next
command on ``OUT`` removes it.

One process at a time writes a run: the lock is ``.OUT.lock`` beside ``OUT`` (a
:mod:`ffnlp.folders.lock` file, which the kernel releases when its holder dies, however it
dies), and holds the holder's pid for the message the second process gives.
"""

# Over 400 lines on purpose: the transaction, its lock and the kept interrupted run are one state machine over one folder.

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import os
import shutil
import tempfile
from pathlib import Path

from ffnlp.errors import ConfigError, ModelFileError, OutputError
from ffnlp.fileio import (
    forget_shown,
    free_bytes,
    is_disk_full,
    output_error,
    show_as,
)
from ffnlp.folders.layout import (
    CHECKPOINT,
    CONFIG,
    REPLACED_WHOLE,
    RUN_FILES,
    SUMMARY,
    lock_path,
)
from ffnlp.folders.lock import Busy, hold, let_go


def default_run_path(task: str, root: str | Path = "runs") -> Path:
    """``runs/<task>-<date>-<time>``, made unique; not created."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{task}-{stamp}"
    n = 1
    while path.exists() or path.is_symlink():
        n += 1
        path = Path(root) / f"{task}-{stamp}-{n}"
    return path


def is_run(path: Path) -> bool:
    """Whether the folder ``path`` holds (part of) an ffnlp run."""
    return any((path / name).exists() for name in RUN_FILES)


def resumable(path: Path) -> bool:
    """Whether the run folder ``path`` has a checkpoint to continue from."""
    return (path / CHECKPOINT).is_file()


# ------------------------------------------------------------------------------------------ lock


class RunLock:
    """``.OUT.lock`` beside ``OUT``, held with ``flock`` for as long as a command writes the run."""

    def __init__(self, out: Path):
        self.out = out
        self.path = lock_path(out)
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = hold(self.path, wait=False)
        except Busy as busy:
            who = f"process {busy.holder}" if busy.holder.isdigit() else "another process"
            raise OutputError(
                f"{self.out} is being written by {who}; wait until it has finished (or "
                "stop it), or choose another --out"
            ) from None
        if fd is not None:
            with contextlib.suppress(OSError):  # on a full disk the lock holds without the pid
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            let_go(self.path, self.fd)
            self.fd = None


# ----------------------------------------------------------------------------------- transaction


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if done == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


class RunTransaction:
    """One training command's hold on its run folder.

    ``work`` is where the command writes: a hidden sibling of ``final``, empty for a new run, a
    copy of the run on resume. :meth:`commit` puts the complete run in place,
    :meth:`keep_interrupted` a resumable partial one, :meth:`abort` removes ``work``; each
    releases the lock.
    """

    def __init__(
        self, final: Path, mode: str, lock: RunLock, created: list[Path], shown: Path | None = None
    ):
        self.final = final
        self.shown = shown if shown is not None else final  # as the user wrote it, for messages
        self.mode = mode  # "new", "replace", "resume" or "private" (see private())
        self.lock = lock
        self.created = created  # parent folders this command made (removed again on abort)
        self.work = final.parent / f".{final.name}.tmp-{os.getpid()}"
        self.done = False

    # -- opening
    @classmethod
    def private(cls, out: str | Path | None, task: str, resume: bool) -> RunTransaction:
        """For the ranks but the first under torchrun: the main process owns the run folder, the
        others write into a private temporary folder (a copy of the run, to resume from), which
        is removed when the command ends. No lock."""
        final = Path(os.path.abspath(out)) if out is not None else default_run_path(task).absolute()
        transaction = cls(final, "private", RunLock(final), [])
        transaction.work = Path(tempfile.mkdtemp(prefix="ffnlp-rank-"))
        show_as(transaction.work, final)
        if resume:
            if not (final / CONFIG).is_file():
                transaction.abort()
                raise ModelFileError(f"cannot resume: {final / CONFIG} is missing")
            shutil.copytree(final, transaction.work, symlinks=True, dirs_exist_ok=True)
        return transaction

    @classmethod
    def open(cls, out: str | Path | None, task: str, resume: bool, force: bool) -> RunTransaction:
        """Take the run folder ``out`` (default: a new dated one) for a new run, a resume or a
        replacement; refuse what the options do not allow (see :func:`_choose_mode`)."""
        _check_options(out, resume, force)
        final = Path(os.path.abspath(out)) if out is not None else default_run_path(task).absolute()
        shown = Path(out) if out is not None else final
        created = _make_parents(final.parent, shown)
        lock = RunLock(final)
        try:
            lock.acquire()
            mode = _choose_mode(final, shown, resume, force)
            transaction = cls(final, mode, lock, created, shown)
            show_as(transaction.work, shown)
            transaction._prepare(force)
        except BaseException:
            forget_shown(final.parent / f".{final.name}.tmp-{os.getpid()}")
            lock.release()
            _remove_made(created)
            raise
        return transaction

    def _prepare(self, force: bool) -> None:
        # we hold the lock, so whoever left these is dead
        _restore_swapped_out(self.final)
        orphans = orphaned(self.final)
        if self.mode == "resume" and not self.final.exists():
            usable = [o for o in orphans if (o / CONFIG).is_file()]
            if not usable:
                raise ModelFileError(f"cannot resume: {self.shown} does not exist")
            usable.sort(key=lambda o: (resumable(o), o.stat().st_mtime))
            os.rename(usable[-1], self.final)  # a new run killed outright: adopt what it left
            orphans.remove(usable[-1])
        if self.mode == "new" and not force and not self.final.exists():
            kept = [o for o in orphans if resumable(o)]
            if kept:
                raise OutputError(
                    f"{self.shown} holds an interrupted run (left in {kept[0].name} by a process "
                    f"that was killed); pass --resume {self.shown} to continue it or --force to "
                    "replace it"
                )
        for orphan in orphans:
            shutil.rmtree(orphan, ignore_errors=True)
        try:
            if self.mode == "resume":
                if not (self.final / CONFIG).is_file():
                    raise ModelFileError(
                        f"cannot resume: {self.shown / CONFIG} is missing (is {self.shown} "
                        "an ffnlp run folder?)"
                    )
                _clone(self.final, self.work)
            else:
                self.work.mkdir()
        except OSError as exc:
            shutil.rmtree(self.work, ignore_errors=True)
            if self.mode == "resume" and is_disk_full(exc):
                raise OutputError(
                    f"no space left on the device to copy {self.shown} for --resume (about "
                    f"{_copied_bytes(self.final):,} bytes needed, {free_bytes(self.final) or 0:,} "
                    "bytes free); free some space. Nothing was changed"
                ) from None
            raise output_error(exc, self.shown) from None

    # -- closing
    def commit(self) -> Path:
        """Put the complete run in place; return its folder."""
        if self.mode == "private":
            self.abort()
            return self.final
        try:
            if self.mode == "new":
                _rename_into_place(self.work, self.final)
            else:
                _swap_in(self.work, self.final)
        except OSError as exc:
            self.abort()
            raise output_error(exc, self.shown) from None
        self._close()
        return self.final

    def keep_interrupted(self) -> Path | None:
        """Keep the partial run when it can be resumed (it has a checkpoint) and return where it
        now is: ``final``, or ``final.interrupted`` beside the run a ``--force`` was replacing.
        Otherwise remove it and return None (a resumed run: ``final``, as it was)."""
        if self.mode == "private":
            self.abort()
            return self.final
        if not resumable(self.work):
            self.abort()
            return self.final if self.mode == "resume" else None
        (self.work / SUMMARY).unlink(missing_ok=True)  # not complete: no summary
        try:
            if self.mode == "new":
                target = self.final
                _rename_into_place(self.work, target)
            elif self.mode == "replace":
                target = _free_name(self.final.parent / f"{self.final.name}.interrupted")
                _rename_into_place(self.work, target)
            else:
                target = self.final
                _swap_in(self.work, target)
        except OSError:
            target = self.work  # still resumable where it is
        self._close()
        return target

    def abort(self) -> None:
        """Remove what this command wrote; the run in ``final`` stays as it was."""
        shutil.rmtree(self.work, ignore_errors=True)
        self._close()
        _remove_made(self.created)

    def _close(self) -> None:
        self.done = True
        forget_shown(self.work)
        self.lock.release()


def _copied_bytes(run: Path) -> int:
    """What :func:`_clone` copies (rather than links)."""
    return sum(
        p.stat().st_size
        for p in run.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name not in REPLACED_WHOLE
    )


def _clone(run: Path, work: Path) -> None:
    """Copy ``run`` to ``work`` for a resume; links stay links (and are refused when written)."""

    def copy(src: str, dst: str) -> object:
        if Path(src).name in REPLACED_WHOLE:
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    shutil.copytree(run, work, symlinks=True, copy_function=copy)


def _check_options(out: str | Path | None, resume: bool, force: bool) -> None:
    if resume and force:
        raise ConfigError(
            "--resume and --force cannot be used together: --resume continues the run in the "
            "folder, --force replaces it with a new one"
        )
    if resume and out is None:
        raise ConfigError("--resume needs the run folder to continue")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ConfigError(f"--out must be a path (str or pathlib.Path); got {out!r}")


def _choose_mode(final: Path, shown: Path, resume: bool, force: bool) -> str:
    """ "new", "resume" or "replace" for the run folder ``final``, or the error that says why
    it cannot be used as asked."""
    if final.is_symlink():
        raise OutputError(f"{shown} is a symbolic link; give the run folder's real path as --out")
    if final.exists() and not final.is_dir():
        raise OutputError(f"{shown} is a file, not a folder; choose another --out")
    if resume:
        return "resume"
    if not final.exists() or not any(final.iterdir()):
        return "new"  # an empty folder is as good as none (e.g. a fresh temporary folder)
    if not is_run(final):
        raise OutputError(
            f"{shown} is a folder that holds other files, not an ffnlp run; choose a new or empty "
            "--out (--force replaces runs only)"
        )
    if not force:
        raise OutputError(
            f"{shown} already holds a run; pass --resume {shown} to continue it or --force to "
            "replace it"
        )
    return "replace"


def _make_parents(folder: Path, shown: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return those made (deepest last)."""
    missing = []
    p = folder
    while not p.exists() and not p.is_symlink() and p != p.parent:
        missing.append(p)
        p = p.parent
    if p.exists() and not p.is_dir():
        raise OutputError(f"cannot make the run folder {shown}: {p} is a file")
    made: list[Path] = []
    for q in reversed(missing):
        try:
            q.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_made(made)
            raise output_error(exc, q) from None
        made.append(q)
    return made


def _remove_made(made: list[Path]) -> None:
    for q in reversed(made):
        try:
            q.rmdir()
        except OSError:
            break  # not empty any more: someone else put something there


def orphaned(final: Path) -> list[Path]:
    """The hidden folders that processes killed outright left for the run ``final``."""
    prefix = f".{final.name}.tmp-"
    try:
        return [p for p in final.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    except OSError:
        return []


def _restore_swapped_out(final: Path) -> None:
    """A process killed halfway through :func:`_swap_in` (on a file system without an atomic
    exchange) leaves the old run as ``.OUT.old-<pid>`` and no ``OUT``: put it back."""
    try:
        old = [p for p in final.parent.iterdir() if p.name.startswith(f".{final.name}.old-")]
    except OSError:
        return
    for p in old:
        if not final.exists():
            os.rename(p, final)
        else:
            shutil.rmtree(p, ignore_errors=True)


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _rename_into_place(work: Path, final: Path) -> None:
    os.rename(work, final)  # onto nothing or an empty folder: atomic
    _sync(final.parent)


def _swap_in(work: Path, final: Path) -> None:
    """Replace the run ``final`` by ``work``; the old run is deleted only after the swap."""
    if _exchange(work, final):
        _sync(final.parent)
        shutil.rmtree(work, ignore_errors=True)  # now the old run
        return
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    os.rename(final, old)
    os.rename(work, final)
    _sync(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def _sync(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
