"""Atomic file writes: a killed process leaves the old file or the new one, never half of one.

Files are created with the permissions any `open(path, "w")` would give them (0o666 less the umask):
`tempfile.mkstemp` makes its file owner-only (0o600), so the temporary file is widened before the rename.
A write that fails (read-only folder, full disk, ...) raises an OSError of the same kind whose message
names the target, not the temporary file.
"""

from __future__ import annotations

import os
import tempfile
import threading
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


def atomic_write(path: str | Path, write) -> None:
    """Call `write(file_object)` on a temporary sibling of `path`, fsync, then rename over `path`.

    The file gets 0o666 less the umask, as a plain `open` would give it. On failure nothing is left behind and
    an OSError of the same kind (PermissionError, ...) naming `path` is raised.
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
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno:
            raise write_error(error, path) from error
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
