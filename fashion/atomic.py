"""Atomic outputs: a stage writes into a temporary sibling and renames it into place.

An interrupted or failed run therefore never leaves a half-written artifact that DVC
could cache or a later stage could read. A run killed outright (kill -9, power loss) cannot clean
up after itself: its temporary siblings stay behind, and the next write of the same output removes
them.
"""

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from fashion.errors import UnwritableOutput


def check_writable(*outputs):
    """Before a stage starts its work: each output can be written, since every output is written beside
    itself and renamed into place. Its folder, or the nearest part of that folder's path that exists,
    must be a folder that takes a new file; nothing is created (a probe file comes and goes). Raises
    UnwritableOutput (a PipelineError) naming the first output that cannot be written, so a stage fails in a second instead
    of after its work."""
    for output in map(Path, outputs):
        folder = output.parent
        existing = next(part for part in (folder, *folder.parents) if part.exists() or part == Path(part.anchor))
        if not existing.is_dir():
            reason = f"{existing} is a file, not a folder"
        else:
            try:
                handle, probe = tempfile.mkstemp(dir=existing, prefix=f".{output.name}.write-check-")
                os.close(handle)
                os.unlink(probe)
                continue
            except OSError as err:
                reason = f"{existing}: {err.strerror or err}"
        raise UnwritableOutput(f"cannot write {output} ({reason}); make {folder} a writable folder (or free space "
                               "on its disk) and run again")


def temporary_sibling(final: Path, suffix="") -> Path:
    """Where `final` is written before it is renamed into place (`suffix` for writers that insist on one)."""
    return final.parent / f".{final.name}.tmp-{os.getpid()}{suffix}"


def remove_stale_temporaries(final: Path):
    """Remove what killed runs left beside `final`: temporary and old copies of processes that are gone."""
    for leftover in final.parent.glob(f".{final.name}.*-*"):
        kind, _, rest = leftover.name[len(final.name) + 2:].partition("-")
        pid = rest.split(".")[0]
        if kind in ("tmp", "old") and pid.isdigit() and not _running(int(pid)):
            remove_stale(leftover)


def _running(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def atomic_dir(final):
    """Yield an empty temporary directory; on success it replaces `final`, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = temporary_sibling(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(final, mode="w"):
    """Yield an open temporary file; on success it replaces `final`, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = temporary_sibling(final)
    try:
        with open(tmp, mode) as handle:
            yield handle
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path, data):
    with atomic_file(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def remove_stale(*paths):
    """Remove outputs of an earlier run before a stage starts, so a failure cannot leave them behind."""
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(path):
    """An exclusive lock for rewriting `path`: flock on its folder, which outlives the file's atomic renames,
    so every writer (thread or process) waits for the one before it to have renamed its copy into place."""
    folder = os.open(Path(path).resolve().parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(folder, fcntl.LOCK_UN)
        os.close(folder)
