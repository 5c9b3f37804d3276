"""Crash-safe file writes (temp file + fsync + rename), content hashing, and the home's file modes, shared by
every stage.

Private by default: everything under MILTON_HOME is owner-only (folders 700, files 600). The CLI sets the
process umask to 077 at entry (`private_umask`), so SQLite, TensorBoard, safetensors and every other
library create owner-only files too; writes here are owner-only whatever the umask (mkstemp's 0600), and
`loose_modes` / `make_private` find and fix a home made before, or by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from milton_lora.errors import fault_errno

PRIVATE_UMASK = 0o077
OWNER_DIR = 0o700
OWNER_FILE = 0o600


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OS error inside the block names `path` (a failed write() carries no file name, and a full disk or
    a read-only folder is reported to the person with the file it hit)."""
    try:
        yield
    except Exception as exc:
        number = fault_errno(exc)
        if number is None or (isinstance(exc, OSError) and exc.filename):
            raise
        raise OSError(number, os.strerror(number), str(path)) from exc


# Temp files and staging folders are named `.<final name>.<pid>.<random>.tmp|.staging` beside their target,
# so the next command can tell a dead command's leftovers from a live one's.
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.(tmp|staging)$")
# Leftovers without a pid in their name (older versions) are removed once this old.
_UNNAMED_STALE_S = 24 * 3600


def _temp_prefix(final: Path) -> str:
    return f".{final.name}.{os.getpid()}."


def sweep_stale(folder: Path) -> list[Path]:
    """Remove the temp files and staging folders in `folder` that a killed command left (its pid is gone);
    returns what was removed. Nothing here fails a command: an unreadable or read-only folder is left as it is."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name) or re.match(r"^\..+\.(tmp|staging)$", entry.name)
        if match is None or not _stale(entry, match):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _stale(entry: Path, match: re.Match[str]) -> bool:
    if match.re is _TEMP_NAME:
        return not process_exists(int(match.group(1)))
    try:
        return time.time() - entry.stat().st_mtime > _UNNAMED_STALE_S
    except OSError:
        return False


def process_exists(pid: int) -> bool:
    """Whether a process with this pid runs (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the new one, never a torn one."""
    with naming(path):
        _atomic_write_bytes(path, data)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_create_text(path: Path, text: str) -> bool:
    """Write `path` only if it does not exist yet (never replacing one that appears meanwhile), whole or not
    at all; returns whether it was written."""
    with naming(path):
        return _atomic_create_text(path, text)


def _atomic_create_text(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp_name, path)  # fails when path exists, unlike a rename
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    _fsync_dir(path.parent)
    return True


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def _fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is flushed.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(folder: Path) -> str:
    """One digest for a folder: sha256 over each file's relative path and sha256, in path order."""
    lines = [f"{p.relative_to(folder).as_posix()} {sha256_file(p)}\n" for p in sorted(folder.rglob("*")) if p.is_file()]
    return sha256_bytes("".join(lines).encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_files(files: dict[Path, bytes]) -> None:
    """Write several files so that a failure before the last rename leaves every old file as it was.

    All temp files are written and fsynced first; only then are they renamed into place, one after another.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            with naming(path):
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
                staged.append((tmp_name, path))
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
        for tmp_name, path in staged:
            os.replace(tmp_name, path)
    finally:
        for tmp_name, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
    for directory in {path.parent for path in files}:
        _fsync_dir(directory)


@contextlib.contextmanager
def staged_new_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that becomes `final` in one rename once the block succeeds.

    `final` must not exist yet (run ids are never reused); a failed block leaves nothing behind.
    """
    with naming(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), suffix=".staging", dir=final.parent))
    try:
        with naming(final):
            yield staging
        os.rename(staging, final)
        _fsync_dir(final.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path for a writer that wants a file name (not bytes); once the block
    succeeds it is fsynced and renamed to `path`, so readers see the old file or the whole new one."""
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with naming(path):
            yield Path(tmp_name)
        with open(tmp_name, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    _fsync_dir(path.parent)


def private_umask() -> None:
    """Make every file and folder this process creates owner-only, whichever library creates it."""
    os.umask(PRIVATE_UMASK)


def loose_modes(root: Path) -> list[Path]:
    """Files and folders under `root` (itself included) that group or others may read, write or enter."""
    if not root.exists():
        return []
    paths = [root, *root.rglob("*")]
    return [p for p in paths if not p.is_symlink() and p.lstat().st_mode & 0o077]


def make_private(root: Path) -> list[Path]:
    """Take group and others' rights off everything under `root` (folders 700, files 600 at most, the owner's
    own bits kept); returns what was changed. Symlinks are left alone: their targets may lie outside."""
    changed = loose_modes(root)
    for path in changed:
        path.chmod(path.lstat().st_mode & 0o700)
    return changed
