"""The prepare stage's cache of decoded images, one file per photo, so adding photos decodes the new
ones only.

An entry's address is a hash of the photo's absolute path, size and modification time (a changed
file is a new entry) inside a folder named by a fingerprint of everything else that changes the
result: the preprocessing (image size, resize, region), data.max_pixels, the Pillow version and the
entry format. A changed setting is a new folder, so nothing stale is ever reused.

    .cache/prepare/<fingerprint>/<key[:2]>/<key>.img   the photo's sha256 (64 hex characters), its
                                                       preprocessed uint8 pixels, then a 16-byte BLAKE2b
    .cache/prepare/<fingerprint>/used                  touched on every run: the folder's last use

The sha256 is that of the whole decoded image, before preprocessing: prepare finds duplicates with
it, so it is kept, not recomputed from the resized pixels. Unreadable files are not cached: they are
decoded again on every run, so a repaired file is picked up. Like the feature cache
(stages/feature_cache.py, whose eviction helpers this reuses), it is not a stage output: deleting it
only costs time; entries are written atomically, and a damaged entry is ignored and recomputed.
"""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from stages.feature_cache import CHECKSUM_BYTES, USED_FILE, folder_bytes, last_used, payload_checksum, size_on_disk

log = logging.getLogger("prepare")

CACHE_DIR = Path(".cache/prepare")
ENTRY_SUFFIX = ".img"
DIGEST_BYTES = 64  # the sha256 as hex
# Bump when the entry layout or the decoding/preprocessing code changes: old folders then age out.
FORMAT_VERSION = 1


def fingerprint(preprocessing, max_pixels):
    """The cache folder name for images prepared by `preprocessing` (a Preprocessing record)."""
    import PIL

    identity = {"format": FORMAT_VERSION, "pillow": PIL.__version__, "preprocessing": preprocessing,
                "max_pixels": max_pixels}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def file_key(path):
    """The entry key of a file as it is now (absolute path, size, modification time), or None if it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    identity = f"{os.path.abspath(path)}\0{info.st_size}\0{info.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()


class DecodeCache:
    """The entries of one fingerprint: `load` a key's (image, sha256) (None when absent or damaged), `store` them."""

    def __init__(self, root, fingerprint, image_size):
        self.root, self.folder = Path(root), Path(root) / fingerprint
        self.shape = (image_size, image_size, 3)
        self.entry_bytes = DIGEST_BYTES + image_size * image_size * 3 + CHECKSUM_BYTES
        self.damaged, self.writable = [], True
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / USED_FILE).touch()

    def path(self, key):
        return self.folder / key[:2] / f"{key}{ENTRY_SUFFIX}"

    def load(self, key):
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        payload, checksum = data[:-CHECKSUM_BYTES], data[-CHECKSUM_BYTES:]
        if len(data) != self.entry_bytes or payload_checksum(payload) != checksum:
            self.damaged.append(key)
            return None
        image = np.frombuffer(payload[DIGEST_BYTES:], dtype=np.uint8).reshape(self.shape)
        return image, payload[:DIGEST_BYTES].decode("ascii")

    def store(self, key, image, digest):
        """Write one entry atomically; a cache that cannot be written (disk full) is a warning, not a failure."""
        if not self.writable:
            return
        payload = digest.encode("ascii") + np.ascontiguousarray(image, dtype=np.uint8).tobytes()
        final = self.path(key)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(payload + payload_checksum(payload))
            os.replace(tmp, final)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            self.writable = False
            log.warning("decode cache: cannot write %s (%s); this run stores no more images", final, err)


def evict(root, max_bytes, current, keep):
    """Bring the cache under max_bytes; return the bytes removed.

    First whole fingerprint folders other than `current`, least recently used first; then entries of
    `current` whose keys are not in `keep` (files no longer in the data set, or changed since). The
    entries of this run's files are never removed: a warning says when they alone exceed the cap.
    """
    root, current = Path(root), Path(current)
    sizes = {folder: folder_bytes(folder) for folder in root.iterdir() if folder.is_dir()}
    total, removed = sum(sizes.values()), 0
    for folder in sorted((f for f in sizes if f != current), key=last_used):
        if total - removed <= max_bytes:
            break
        shutil.rmtree(folder, ignore_errors=True)
        removed += sizes[folder]
    if total - removed > max_bytes and current.is_dir():
        for shard in current.iterdir():
            for entry in shard.glob(f"*{ENTRY_SUFFIX}") if shard.is_dir() else ():
                if entry.stem not in keep:
                    removed += size_on_disk(entry)
                    entry.unlink(missing_ok=True)
    if total - removed > max_bytes:
        log.warning("decode cache: the images of this data set alone take %.2f GB, more than "
                    "data.cache_max_gb (%.2f); raise it, or the next run decodes them again",
                    (total - removed) / 1e9, max_bytes / 1e9)
    return removed
