"""Atomic writes: a killed process leaves the old file (or folder) or the new one, never half of one.

Files are created with the permissions any `open(path, "w")` would give them (0o666 less the umask):
`tempfile.mkstemp` makes its file owner-only (0o600), so the temporary file is widened before the rename.
A write that fails (read-only folder, full disk, ...) raises an OSError of the same kind whose message
names the target, not the temporary file.

A folder of several files is built in a hidden sibling (`staging_folder`) and swapped in whole at the end
(`publish_folder`), so readers never see a mix of an old and a new set.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (/proc on Linux).

    Elsewhere it is read by setting and restoring it under a lock, which other threads of this process that
    create files at that instant could observe; only this module reads it that way.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a newly created regular file gets: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """The mode a newly created folder gets: 0o777 less the umask."""
    return 0o777 & ~current_umask()


def write_error(error: OSError, path: str | Path) -> OSError:
    """A system error (one with an errno) as an OSError of the same kind (PermissionError, ...) whose message
    names `path` rather than a temporary sibling; any other error unchanged."""
    if not error.errno:
        return error
    return OSError(error.errno, f"cannot write {path}: {error.strerror or error}")


class _Output:
    """The temporary file as `atomic_write`'s writer sees it: write, flush, tell, seek, but no fileno().

    Without a file descriptor numpy (`np.save`) and Pillow write through Python's file object instead of their
    C fast paths, which report a full disk as a short write ("46200 requested and 24448 written") with no
    errno; Python's own write raises OSError(ENOSPC, ...), which names the cause.
    """

    def __init__(self, handle) -> None:
        self._handle = handle

    def write(self, data) -> int:
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


def _system_error(error: BaseException) -> OSError | None:
    """The OSError with an errno that `error` is, or that it was raised while handling (torch.save turns a full
    disk into a RuntimeError from its zip writer's clean-up); None for anything else (Ctrl-C included)."""
    seen: set[int] = set()
    while isinstance(error, Exception) and id(error) not in seen:
        if isinstance(error, OSError) and error.errno:
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def atomic_write(path: str | Path, write) -> None:
    """Call `write(file_object)` on a temporary sibling of `path`, fsync, then rename over `path`.

    The file gets 0o666 less the umask, as a plain `open` would give it. On failure nothing is left behind and
    an OSError of the same kind (PermissionError, ...) naming `path` is raised; a full disk is ENOSPC whichever
    library wrote (`_Output`). A process killed mid-write (kill -9) can leave its hidden temporary sibling
    (`.<name>.*.tmp`), never a torn `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        if not error.errno:
            raise
        raise write_error(error, path) from error
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), file_mode())
            write(_Output(handle))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        cause = _system_error(error)
        if cause is not None:
            raise write_error(cause, path) from error
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def publish_folder(staging: str | Path, target: str | Path) -> None:
    """Rename the finished folder `staging` to `target`, replacing a previous `target` whole.

    No target, or an empty one: one rename. Otherwise the previous folder is renamed aside (a hidden
    `.<name>.old-<pid>` sibling), `staging` renamed in, and the previous one removed; if the second rename
    fails, the previous folder is put back. A failure raises an OSError naming `target` that says whether
    `target` is as it was. A process killed between the two renames leaves no `target` and the previous
    folder aside, which the next `staging_folder` of the same target puts back.
    """
    staging, target = Path(staging), Path(target)
    try:
        os.replace(staging, target)  # no target, or an empty folder: one rename
        _fsync_folder(target.parent)
        return
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise _unchanged(error, target) from error
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(target, old)
    except OSError as error:
        raise _unchanged(error, target) from error
    try:
        os.rename(staging, target)
    except BaseException as error:
        try:
            os.rename(old, target)  # put the previous output back
        except OSError:
            if isinstance(error, OSError) and error.errno:
                raise OSError(
                    error.errno, f"cannot write {target}: {os.strerror(error.errno)}; the previous output is in {old}"
                ) from error
            raise error from None
        if isinstance(error, OSError) and error.errno:
            raise _unchanged(error, target) from error
        raise
    _fsync_folder(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _unchanged(error: OSError, target: Path) -> OSError:
    """A failed write of the folder `target` that left it as it was, as an OSError of the same kind."""
    if not error.errno:
        return error
    return OSError(error.errno, f"cannot write {target}: {os.strerror(error.errno)}; it is as it was before this run")


_LEFT_BEHIND = re.compile(r"\.(?P<name>.+)\.(?:partial-(?P<partial>\d+)-.*|old-(?P<old>\d+))")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _clear_left_behind(target: Path) -> None:
    """Tidy what a killed `staging_folder` of `target` left: its staging folders are removed, and a previous
    output it had set aside while swapping is put back when `target` is missing (removed otherwise). Only
    leftovers of processes that no longer exist are touched."""
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for path in siblings:
        match = _LEFT_BEHIND.fullmatch(path.name)
        if match is None or match["name"] != target.name or not path.is_dir() or path.is_symlink():
            continue
        if _alive(int(match["partial"] or match["old"])):
            continue
        if match["old"] and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(path, target)
            continue
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staging_folder(target: str | Path) -> Iterator[Path]:
    """Yield a new, empty hidden sibling of the folder `target` to build it in; publish it as `target` when
    the block ends, or remove it when the block raises (then `target` is as it was).

    The folder gets 0o777 less the umask, as `mkdir` would give it. An OSError about the staging folder (a
    full disk, a read-only place) or the swap is raised as one of the same kind naming `target`; other errors
    pass unchanged. Leftovers of killed runs for the same target are tidied first (`_clear_left_behind`).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _clear_left_behind(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    except OSError as error:
        if not error.errno:
            raise
        raise write_error(error, target) from error
    try:
        try:
            os.chmod(staging, folder_mode())  # mkdtemp makes it owner-only; the output gets what mkdir gives
            yield staging
        except OSError as error:
            if error.errno and str(staging) in f"{error} {error.filename} {error.filename2}":
                raise _unchanged(error, target) from error
            raise
        publish_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
