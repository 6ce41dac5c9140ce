"""The extract stage's cache of backbone features, one file per image, so adding photos runs the
backbone over the new ones only.

An entry's address is the image's pixel hash (the manifest's `sha256`) inside a folder named by a
fingerprint of everything else that changes the features: the backbone recipe (with the contents of
weights files, not their paths), the preprocessing, and the Keras version. A changed setting is a
new folder, so nothing stale is ever reused.

    .cache/features/<fingerprint>/<sha256[:2]>/<sha256>.f32   float32 features, then a 16-byte BLAKE2b of them
    .cache/features/<fingerprint>/used                         touched on every run: the folder's last use

The cache is not an output of the stage: DVC never sees it, and deleting it only costs time. Entries are
written to a temporary file and renamed into place, so a killed run leaves no partial entry; an entry
that is damaged anyway (wrong size or checksum) is ignored and recomputed.
"""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from stages.atomic import remove_stale_temporaries

log = logging.getLogger("extract")

CACHE_DIR = Path(".cache/features")
ENTRY_SUFFIX = ".f32"
USED_FILE = "used"
CHECKSUM_BYTES = 16
# Bump when the entry layout or the meaning of the features changes: old folders then age out.
FORMAT_VERSION = 1
_NOT_FILES = ("none", "imagenet", "auto")


def file_digest(path):
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _weights_content(weights):
    """A weights value with every file path replaced by the hash of the file's contents: a file
    replaced under the same name is a new fingerprint, the same file under another name is not."""
    if isinstance(weights, dict):
        return {name: _weights_content(value) for name, value in sorted(weights.items())}
    return weights if weights in _NOT_FILES else {"sha256": file_digest(weights)}


def fingerprint(backbone, preprocessing):
    """The cache folder name for features made by `backbone` (a BackboneRecipe record, weights
    resolved) from images prepared by `preprocessing` (a Preprocessing record)."""
    import keras

    identity = {"format": FORMAT_VERSION, "keras": keras.__version__,
                "backbone": {**backbone, "weights": _weights_content(backbone["weights"])},
                "preprocessing": preprocessing}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


class FeatureCache:
    """The entries of one fingerprint: `load` a key's features (None when absent or damaged), `store` them."""

    def __init__(self, root, fingerprint, dim):
        self.root, self.folder, self.dim = Path(root), Path(root) / fingerprint, dim
        self.entry_bytes = dim * 4 + CHECKSUM_BYTES
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
        return np.frombuffer(payload, dtype="<f4")

    def store(self, key, features):
        """Write one entry atomically; a cache that cannot be written (disk full) is a warning, not a failure."""
        if not self.writable:
            return
        payload = np.ascontiguousarray(features, dtype="<f4").tobytes()
        final = self.path(key)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(payload + payload_checksum(payload))
            os.replace(tmp, final)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            self.writable = False
            log.warning("feature cache: cannot write %s (%s); this run stores no more features", final, err)


def payload_checksum(payload):
    return hashlib.blake2b(payload, digest_size=CHECKSUM_BYTES).digest()


def evict(root, max_bytes, current, keep):
    """Bring the cache under max_bytes; return the bytes removed.

    First whole fingerprint folders other than `current`, least recently used first; then entries of
    `current` whose keys are not in `keep` (images no longer in the data set). The entries of this
    run's images are never removed: a warning says when they alone exceed the cap.
    """
    root, current = Path(root), Path(current)
    sizes = {folder: folder_bytes(folder) for folder in root.iterdir() if folder.is_dir()}
    total, removed = sum(sizes.values()), 0
    others = sorted((f for f in sizes if f != current), key=last_used)
    for folder in others:
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
        log.warning("feature cache: the features of this data set alone take %.2f GB, more than "
                    "features.cache_max_gb (%.2f); raise it, or the next run recomputes them",
                    (total - removed) / 1e9, max_bytes / 1e9)
    return removed


def folder_bytes(folder):
    total = 0
    for shard in os.scandir(folder):
        if shard.is_dir():
            for entry in os.scandir(shard.path):
                if ".tmp-" in entry.name:  # left by a killed run: remove it if its process is gone
                    remove_stale_temporaries(Path(shard.path) / entry.name.split(".tmp-")[0].lstrip("."))
                    continue
                total += size_on_disk(entry)
        else:
            total += size_on_disk(shard)
    return total


def size_on_disk(entry):
    """Bytes on disk, not the file's length: a 4 KB entry takes 8 KB of 4 KB blocks."""
    try:
        return entry.stat().st_blocks * 512
    except FileNotFoundError:  # removed meanwhile by another run's eviction
        return 0


def last_used(folder):
    try:
        return (folder / USED_FILE).stat().st_mtime
    except FileNotFoundError:
        return 0.0
