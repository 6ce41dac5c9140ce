"""The inventory of a photo folder (stage `scan`): data/inventory.json, the file prepare depends on.

DVC hashes every dependency of a stage before it runs it, and it stops on a dangling symlink or a
symlink loop inside a folder dependency, before prepare could skip such a file with a reason. So
prepare does not depend on data.path but on this inventory, and this stage, marked
`always_changed` in dvc.yaml, reads the folder on every `dvc repro`, skipping what prepare skips,
for the same reasons (fashion.data.files.walk_image_files). The inventory holds each usable file's
path, size and content hash, and each skipped entry with its reason: when the photos change, it
changes and prepare runs again; when they do not, it is the same file and DVC skips prepare.
Modification times are left out on purpose: a checkout or a copy changes them, not the photos.

A file's hash is reused from the last scan while its size, modification time and inode are the
same (as DVC's own state database does), kept in .cache/scan when data.cache is on (Paths.scan_cache).
See docs/bad-input.md.
"""

import json
import os
from pathlib import Path

from fashion.atomic import write_json
from fashion.data.files import skip, walk_image_files
from fashion.digests import file_sha256
from fashion.errors import PipelineError


def scan(data_path, source, hash_cache=None):
    """The inventory of data_path: {"path", "source", "files": [{path, size, sha256}], "skipped": [...]}.

    hash_cache: a JSON file of earlier hashes to reuse (and rewrite), or None."""
    root = Path(data_path)
    if not root.is_dir():
        problem = "does not exist" if not root.exists() else "is a file, not a folder"
        raise PipelineError(f"data.path {root} {problem}; point data.path at a folder with one sub-folder per "
                            "class, or at the Fashion-MNIST IDX files (dvc exp run -S data.path=/your/photos)")
    skipped = []
    if source == "fashion_mnist":  # the IDX files, side by side in one folder
        files = [entry for entry in sorted(root.iterdir()) if not entry.name.startswith(".") and entry.is_file()]
    else:
        files = list(walk_image_files(root, root, skipped))
    known = _read_cache(hash_cache)
    hashes, listed = {}, []
    for file in files:
        shown = file.relative_to(root).as_posix()
        try:
            info = os.stat(file)
            stamp = [info.st_size, info.st_mtime_ns, info.st_ino]
            key = str(file.resolve())
            earlier = known.get(key)
            reuse = isinstance(earlier, list) and len(earlier) == 4 and earlier[:3] == stamp
            digest = earlier[3] if reuse else file_sha256(file)
        except OSError as err:  # e.g. no read permission: prepare skips it too
            skip(skipped, shown, "unreadable", f"cannot open: {err.strerror or err}")
            continue
        hashes[key] = [*stamp, digest]
        listed.append({"path": shown, "size": info.st_size, "sha256": digest})
    if hash_cache is not None:
        write_json(hash_cache, hashes)
    return {"path": str(data_path), "source": source, "files": listed,
            "skipped": sorted(skipped, key=lambda entry: entry["path"])}


def _read_cache(path):
    if path is None or not Path(path).is_file():
        return {}
    try:
        known = json.loads(Path(path).read_text())
    except ValueError:  # a damaged cache is rebuilt by hashing again
        return {}
    return known if isinstance(known, dict) else {}

