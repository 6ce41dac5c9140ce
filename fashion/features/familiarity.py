"""How unlike the training photos a photo is: the novelty score, in the frozen backbone's feature space.

A photo's novelty is the mean cosine distance (1 - cosine similarity) from its backbone features to the
`neighbours` nearest training photos' features. The cutoff above which a photo is called unfamiliar is a
quantile of the validation photos' novelty (photos the reference never held, like new photos), fitted by
the decide stage, never a hand-picked constant. A softmax says how sure a model is among its classes; it
cannot say that a photo belongs to none of them, and this can.

What prediction needs is saved beside the models (models/decisions/familiar.npz and .json): at most
`reference` training feature vectors (an even draw per class when there are more, so memory stays bounded),
the cutoff, and the backbone and preprocessing recipes that made the features, from which predict and serve
rebuild the same frozen backbone for any model, the CNN included.
"""

import json
from pathlib import Path

import numpy as np

from fashion.atomic import atomic_file, write_json
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.errors import missing, outdated

ARRAYS = "familiar.npz"
RECORD = "familiar.json"


def unit_rows(features):
    """Each feature vector scaled to length 1 (an all-zero vector stays zero)."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def reference_sample(features, labels, size, seed):
    """Row indices of at most `size` training photos: all of them, or an even share of each class, seeded."""
    if len(features) <= size:
        return np.arange(len(features))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    keep = []
    for i, value in enumerate(classes):
        members = np.flatnonzero(labels == value)
        share = size // len(classes) + (i < size % len(classes))
        keep.append(rng.choice(members, min(share, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


class Familiarity:
    """The training photos' features and the cutoff: novelty scores and the unfamiliar verdict of new photos."""

    def __init__(self, reference, neighbours, cutoff, record):
        self.reference = unit_rows(reference)
        self.neighbours = min(int(neighbours), len(self.reference))
        self.cutoff, self.record = cutoff, record
        self._extractor = None

    def novelty(self, features, batch=256):
        """(n,) mean cosine distance of each feature vector to its `neighbours` nearest reference vectors."""
        features = unit_rows(features)
        out = np.empty(len(features), dtype=np.float64)
        k = self.neighbours
        for start in range(0, len(features), batch):
            distance = 1.0 - features[start:start + batch] @ self.reference.T
            nearest = np.partition(distance, k - 1, axis=1)[:, :k]
            out[start:start + batch] = nearest.mean(axis=1)
        return out

    def unfamiliar(self, novelty):
        return np.asarray(novelty) > self.cutoff

    @property
    def backbone(self):
        return BackboneRecipe.from_record(self.record[BackboneRecipe.RECORD_KEY], RECORD)

    @property
    def preprocessing(self):
        return Preprocessing.from_record(self.record[Preprocessing.RECORD_KEY], RECORD)

    def shares_backbone(self, classifier):
        """True when the classifier is a head on exactly these features: its features serve both."""
        return (classifier.kind == "head" and classifier.extractor is not None
                and classifier.info.get(BackboneRecipe.RECORD_KEY) == self.record[BackboneRecipe.RECORD_KEY])

    def features(self, images, classifier=None):
        """Backbone features of a batch of prepared uint8 images (the head's own backbone when it is the same)."""
        if classifier is not None and self.shares_backbone(classifier):
            return classifier.extractor(images)
        if self._extractor is None:
            from fashion.features.frozen_backbone import build_extractor

            self._extractor = build_extractor(self.backbone, self.preprocessing.image_size)
        return self._extractor(images)


def fit_familiarity(train_x, train_y, validation_x, neighbours, quantile, reference, seed, info):
    """A Familiarity from the training features (the reference) and the validation features (the cutoff: their
    `quantile` of novelty). `info`: the extract stage's info.json, whose recipes travel with it."""
    kept = reference_sample(train_x, train_y, reference, seed)
    record = {"neighbours": int(min(neighbours, len(kept))), "quantile": quantile,
              "reference_photos": int(len(kept)), "training_photos": int(len(train_x)),
              Preprocessing.RECORD_KEY: info[Preprocessing.RECORD_KEY],
              BackboneRecipe.RECORD_KEY: info[BackboneRecipe.RECORD_KEY]}
    familiarity = Familiarity(train_x[kept], neighbours, None, record)
    scores = familiarity.novelty(validation_x)
    familiarity.cutoff = round(float(np.quantile(scores, quantile)), 6)
    record.update(cutoff=familiarity.cutoff, validation_photos=int(len(scores)),
                  validation_unfamiliar=round(float(familiarity.unfamiliar(scores).mean()), 6),
                  validation_novelty={name: round(float(np.quantile(scores, q)), 6)
                                      for name, q in (("median", 0.5), ("p95", 0.95), ("max", 1.0))})
    return familiarity


def save_familiarity(familiarity, folder):
    with atomic_file(Path(folder) / ARRAYS, "wb") as handle:
        np.savez(handle, reference=familiarity.reference.astype(np.float32))
    write_json(Path(folder) / RECORD, familiarity.record)


def load_familiarity(folder):
    """The saved Familiarity of models/decisions/, or None when there is none (a run from before it)."""
    arrays, record = Path(folder) / ARRAYS, Path(folder) / RECORD
    if not record.is_file():
        return None
    if not arrays.is_file():
        raise missing(arrays, "the training features the novelty score compares with")
    try:
        info = json.loads(record.read_text())
        with np.load(arrays, allow_pickle=False) as saved:
            reference = saved["reference"]
        return Familiarity(reference, info["neighbours"], info["cutoff"], info)
    except (ValueError, KeyError, OSError) as err:
        raise outdated(record, f"could not be read ({type(err).__name__}: {err})") from None
