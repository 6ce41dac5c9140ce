"""The one place image files are found: which files under a folder are photos, and why the others are skipped.

The scan stage lists them, prepare reads them and the prediction command tags them with `walk_image_files`, so
all three pass over the same files for the same reasons (hidden, system, unsupported type, broken or looping
symbolic link).
"""

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SYSTEM_FILES = {"thumbs.db", "desktop.ini", "icon\r"}


def skip(skipped, path, kind, reason, warn=True):
    """Record a file that is passed over, with a kind (for counts) and a reason (for the user); warn=False
    records it without a warning (one that another step has already given)."""
    if warn:
        log.warning("skipped %s: %s", path, reason)
    skipped.append({"path": str(path), "kind": kind, "reason": reason})


def walk_image_files(root, folder, skipped, warn=True):
    """Image files under folder, recursively, in sorted order; everything else is skipped (paths
    relative to root). warn=False: skipped without a warning (prepare, after scan has warned of the same files)."""
    visited = set()
    for current, subfolders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        # A symlink to a folder already walked, or to one of its ancestors, would never end.
        if real in visited or any(seen.startswith(real + os.sep) for seen in visited):
            skip(skipped, Path(current).relative_to(root), "symlink_loop",
                 "folder symlink points back into a folder already read; remove the link", warn=warn)
            subfolders[:] = []
            continue
        visited.add(real)
        for name in sorted(subfolders):
            if name.startswith("."):
                skip(skipped, (Path(current) / name).relative_to(root), "hidden", "hidden file or folder", warn=warn)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            path = Path(current) / name
            shown = path.relative_to(root)
            if name.startswith("."):
                skip(skipped, shown, "hidden", "hidden file or folder", warn=warn)
            elif name.lower() in SYSTEM_FILES:
                skip(skipped, shown, "system_file", "operating-system metadata file", warn=warn)
            elif path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                skip(skipped, shown, "unsupported_type",
                     f"unsupported file type '{path.suffix}'; supported: {', '.join(SUPPORTED_EXTENSIONS)}", warn=warn)
            elif _readable_file(path, shown, skipped, warn):
                yield path


def _readable_file(path, shown, skipped, warn=True):
    try:
        os.stat(path)  # follows symlinks: fails on loops and dangling links
        return True
    except OSError as err:
        kind, reason = link_problem(path, err)
        skip(skipped, shown, kind, reason, warn=warn)
        return False


def link_problem(path, err):
    """(kind, reason) for a path that os.stat failed on with `err`: a symbolic link loop, a broken symbolic
    link, or a file that cannot be read."""
    if err.errno == errno.ELOOP:
        return "symlink_loop", "symbolic link loop: the link leads back to itself; remove it or point it at a photo"
    if err.errno == errno.ENOENT and os.path.islink(path):
        return "broken_link", f"broken symbolic link: its target {os.readlink(path)} does not exist"
    return "unreadable", f"cannot open: {err.strerror or err}"
