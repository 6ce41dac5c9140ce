"""The extract stage's cache of backbone features, one file per image, so adding photos runs the
backbone over the new ones only.

An entry's address is the image's pixel hash (the manifest's `sha256`) inside a folder named by a
fingerprint of everything else that changes the features: the backbone recipe (with the contents of
weights files, not their paths), the preprocessing, the neckline locator's models and rules when it
is on (prepare's summary.json `locator_version`: the sha256 is of the whole photo, so another locator
cuts another box out of the same key), and the Keras version. A changed setting is a
new folder, so nothing stale is ever reused.

    .cache/features/<fingerprint>/<sha256[:2]>/<sha256>.f32   float32 features, then a 16-byte BLAKE2b of them
    .cache/features/<fingerprint>/used                         touched on every run: the folder's last use

Entries, their atomic writes and checksums, and eviction are fashion/data/entry_cache.py's, shared with the
decode cache.
"""

import logging

import numpy as np

from fashion.data import entry_cache
from fashion.data.entry_cache import USED_FILE, EntryCache, hash_identity  # noqa: F401  (USED_FILE: the layout, for tests)
from fashion.digests import file_sha256
from fashion.features.weights import weights_file

log = logging.getLogger(__name__)

ENTRY_SUFFIX = ".f32"
# Bump when the entry layout or the meaning of the features changes: old folders then age out.
FORMAT_VERSION = 1
_NOT_FILES = ("none", "imagenet", "auto")


def _weights_content(weights):
    """A weights value with every file path replaced by the hash of the file's contents: a file
    replaced under the same name is a new fingerprint, the same file under another name is not."""
    if isinstance(weights, dict):
        return {name: _weights_content(value) for name, value in sorted(weights.items())}
    return weights if weights in _NOT_FILES else {"sha256": file_sha256(weights_file(weights) or weights)}


def fingerprint(backbone, preprocessing, locator=None):
    """The cache folder name for features made by `backbone` (a BackboneRecipe record, weights
    resolved) from images prepared by `preprocessing` (a Preprocessing record), located by `locator`
    (fashion.data.locate.version; None without a locator)."""
    import keras

    identity = {"format": FORMAT_VERSION, "keras": keras.__version__,
                "backbone": {**backbone, "weights": _weights_content(backbone["weights"])},
                "preprocessing": preprocessing}
    if locator is not None:
        identity["locator"] = locator
    return hash_identity(identity)


class FeatureCache(EntryCache):
    """The entries of one fingerprint: `load` a key's features (None when absent or damaged), `store` them."""

    def __init__(self, root, fingerprint, dim):
        super().__init__(root, fingerprint, dim * 4, ENTRY_SUFFIX, log, "feature cache")
        self.dim = dim

    def load(self, key):
        payload = self.load_payload(key)
        return None if payload is None else np.frombuffer(payload, dtype="<f4")

    def store(self, key, features):
        self.store_payload(key, np.ascontiguousarray(features, dtype="<f4").tobytes())


def evict(root, max_bytes, current, keep):
    """Bring the cache under max_bytes (entry_cache.evict); return the bytes removed. `keep`: the
    current data set's images, never removed: a warning says when they alone exceed the cap."""
    return entry_cache.evict(root, max_bytes, current, keep, ENTRY_SUFFIX, log,
                             "feature cache: the features of this data set alone take %.2f GB, more than "
                             "features.cache_max_gb (%.2f); raise it, or the next run recomputes them")
