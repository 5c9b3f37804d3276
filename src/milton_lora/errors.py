"""The one exception type for user mistakes: the CLI prints its message on one line and exits non-zero; and
the faults of the machine (a full disk, a read-only home) told the same way."""

from __future__ import annotations

import errno
import os


class MiltonError(Exception):
    """A problem the user can fix (bad input, missing file, refused transition).

    The message must name the file, line or key at fault and say what to do.
    """

    exit_code = 1


# Faults of the machine that the person can fix, recognised by errno, or by text where a library (SQLite,
# safetensors) reports the OS error inside its own exception.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
_TEXTS = {
    "No space left on device": errno.ENOSPC, "File too large": errno.EFBIG, "database or disk is full": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT, "Read-only file system": errno.EROFS, "readonly database": errno.EROFS,
    "Permission denied": errno.EACCES,
}  # fmt: skip


def fault_errno(exc: BaseException) -> int | None:
    """The errno of a full disk or an unwritable folder behind `exc` (its own, or named in its text)."""
    if isinstance(exc, OSError):
        return exc.errno if exc.errno in _DISK_FULL | _NOT_WRITABLE else None
    return next((number for text, number in _TEXTS.items() if text in str(exc)), None)


def fault_message(exc: BaseException) -> str | None:
    """One line for a full disk or a folder that cannot be written, naming the file and what to do; None
    for anything else (a real bug keeps its traceback)."""
    for cause in _chain(exc):
        number = fault_errno(cause)
        where = cause.filename if isinstance(cause, OSError) and cause.filename else "a file"
        if number in _DISK_FULL:
            return f"no space left writing {where}: free disk space (or raise the file size limit), run it again"
        if number in _NOT_WRITABLE:
            return (f"cannot write {where} ({os.strerror(number)}): make that folder writable, or point MILTON_HOME "
                    "(or --home) at a writable folder")  # fmt: skip
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
