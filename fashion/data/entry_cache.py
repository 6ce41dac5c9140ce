"""What the feature cache and the decode cache share: checksummed entries, one file per key, in a
folder per fingerprint, written atomically, and eviction of the least recently used folders.

    <root>/<fingerprint>/<key[:2]>/<key><suffix>   payload, then a 16-byte BLAKE2b of it
    <root>/<fingerprint>/used                      touched on every run: the folder's last use

A cache is never a stage output: deleting it only costs time. A damaged entry (wrong size or
checksum) reads as absent and is recomputed by the caller.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

from fashion.atomic import remove_stale_temporaries

USED_FILE = "used"
CHECKSUM_BYTES = 16


def hash_identity(identity):
    """A folder name for everything that changes an entry's contents (a JSON-able mapping)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def payload_checksum(payload):
    return hashlib.blake2b(payload, digest_size=CHECKSUM_BYTES).digest()


class EntryCache:
    """The entries of one fingerprint: `load_payload` a key's bytes (None when absent or damaged),
    `store_payload` them. Subclasses turn payloads into arrays and back."""

    def __init__(self, root, fingerprint, payload_bytes, suffix, log, what):
        self.root, self.folder = Path(root), Path(root) / fingerprint
        self.entry_bytes = payload_bytes + CHECKSUM_BYTES
        self.suffix, self.log, self.what = suffix, log, what
        self.damaged, self.writable = [], True
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / USED_FILE).touch()

    def path(self, key):
        return self.folder / key[:2] / f"{key}{self.suffix}"

    def load_payload(self, key):
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        payload, checksum = data[:-CHECKSUM_BYTES], data[-CHECKSUM_BYTES:]
        if len(data) != self.entry_bytes or payload_checksum(payload) != checksum:
            self.damaged.append(key)
            return None
        return payload

    def store_payload(self, key, payload):
        """Write one entry atomically; a cache that cannot be written (disk full) is a warning, not a failure."""
        if not self.writable:
            return
        final = self.path(key)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(payload + payload_checksum(payload))
            os.replace(tmp, final)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            self.writable = False
            self.log.warning("%s: cannot write %s (%s); this run stores no more entries", self.what, final, err)


def evict(root, max_bytes, current, keep, suffix, log, over_cap):
    """Bring the cache under max_bytes; return the bytes removed.

    First whole fingerprint folders other than `current`, least recently used first; then entries of
    `current` whose keys are not in `keep`. The entries of this run's keys are never removed: when they
    alone exceed the cap, `log` warns with `over_cap`, a message with two %.2f for their GB and the cap's.
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
            for entry in shard.glob(f"*{suffix}") if shard.is_dir() else ():
                if entry.stem not in keep:
                    removed += size_on_disk(entry)
                    entry.unlink(missing_ok=True)
    if total - removed > max_bytes:
        log.warning(over_cap, (total - removed) / 1e9, max_bytes / 1e9)
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
