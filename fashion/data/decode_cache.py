"""The prepare stage's cache of decoded images, one file per photo, so adding photos decodes the new
ones only.

An entry's address is a hash of the photo's absolute path, size and modification time (a changed
file is a new entry) inside a folder named by a fingerprint of everything else that changes the
result: the preprocessing (image size, resize, region, the neckline locator and its box), data.max_pixels,
data.min_side, data.max_aspect, the Pillow version (and with data.locate face or auto the face detector's
version, the BlazePose model files' sha256 and the locator rules' version: fashion.data.locate.version) and
the entry format. A changed setting is a new folder, so nothing stale is ever reused; adding photos runs the
detector on the new ones only.

    .cache/prepare/<fingerprint>/<key[:2]>/<key>.img   the photo's sha256 (64 hex characters), where its
                                                       input was cut (4 float64 fractions, then a located,
                                                       a locator and a view byte), its preprocessed uint8 pixels, then a
                                                       16-byte BLAKE2b
    .cache/prepare/<fingerprint>/used                  touched on every run: the folder's last use

The sha256 is that of the whole decoded image, before preprocessing: prepare finds duplicates with
it, so it is kept, not recomputed from the resized pixels. Unreadable files are not cached: they are
decoded again on every run, so a repaired file is picked up. Entries, their atomic writes and
checksums, and eviction are fashion/data/entry_cache.py's, shared with the feature cache.
"""

import hashlib
import logging
import os

import numpy as np

from fashion.data import entry_cache
from fashion.data.entry_cache import EntryCache, hash_identity
from fashion.data.locate import PHOTO_LOCATORS, VIEWS, Location

log = logging.getLogger(__name__)

ENTRY_SUFFIX = ".img"
DIGEST_BYTES = 64  # the sha256 as hex
LOCATION_BYTES = 4 * 8 + 3  # top, bottom, left, right as float64, then the located, locator and view codes
_LOCATED_CODE = {False: 0, True: 1, None: 2}  # 2: not looked for
_LOCATOR_CODE = {None: 0, **{name: code for code, name in enumerate(PHOTO_LOCATORS, 1)}}
_VIEW_CODE = {None: 0, **{name: code for code, name in enumerate(VIEWS, 1)}}
# Bump when the entry layout or the decoding/preprocessing code changes: old folders then age out.
FORMAT_VERSION = 3


def fingerprint(preprocessing, max_pixels, min_side, max_aspect):
    """The cache folder name for images prepared by `preprocessing` (a Preprocessing record) under
    these limits: only accepted images are cached, so a tighter limit must not find them."""
    import PIL

    from fashion.data import locate

    identity = {"format": FORMAT_VERSION, "pillow": PIL.__version__, "preprocessing": preprocessing,
                "max_pixels": max_pixels, "min_side": min_side, "max_aspect": max_aspect}
    if preprocessing.get("locate", "none") != "none":
        identity["detector"] = locate.version(preprocessing["locate"])
    return hash_identity(identity)


def file_key(path):
    """The entry key of a file as it is now (absolute path, size, modification time), or None if it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    identity = f"{os.path.abspath(path)}\0{info.st_size}\0{info.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()


class DecodeCache(EntryCache):
    """The entries of one fingerprint: `load` a key's (image, sha256, Location) (None when absent or damaged),
    `store` them."""

    def __init__(self, root, fingerprint, image_size):
        super().__init__(root, fingerprint, DIGEST_BYTES + LOCATION_BYTES + image_size * image_size * 3,
                         ENTRY_SUFFIX, log, "decode cache")
        self.shape = (image_size, image_size, 3)

    def load(self, key):
        payload = self.load_payload(key)
        if payload is None:
            return None
        pixels = DIGEST_BYTES + LOCATION_BYTES
        box = np.frombuffer(payload[DIGEST_BYTES:pixels - 3], dtype="<f8")
        located, locator, view = (_decoded(table, payload[pixels - 3 + i])
                                  for i, table in enumerate((_LOCATED_CODE, _LOCATOR_CODE, _VIEW_CODE)))
        image = np.frombuffer(payload[pixels:], dtype=np.uint8).reshape(self.shape)
        return image, payload[:DIGEST_BYTES].decode("ascii"), Location(*map(float, box), located, locator, view)

    def store(self, key, image, digest, location):
        box = np.array([location.top, location.bottom, location.left, location.right], dtype="<f8")
        self.store_payload(key, digest.encode("ascii") + box.tobytes() + bytes([_LOCATED_CODE[location.located],
                                                                              _LOCATOR_CODE[location.locator],
                                                                              _VIEW_CODE[location.view]])
                           + np.ascontiguousarray(image, dtype=np.uint8).tobytes())


def _decoded(table, code):
    return next((value for value, known in table.items() if known == code), None)


def evict(root, max_bytes, current, keep):
    """Bring the cache under max_bytes (entry_cache.evict); return the bytes removed. `keep`: the keys of
    this run's files, never removed: a warning says when they alone exceed the cap."""
    return entry_cache.evict(root, max_bytes, current, keep, ENTRY_SUFFIX, log,
                             "decode cache: the images of this data set alone take %.2f GB, more than "
                             "data.cache_max_gb (%.2f); raise it, or the next run decodes them again")
