"""The cached backbone features on disk, and how later stages read them.

`data/features/` (the extract stage) holds `<split>.npz` for every split (features, labels and the
image store rows they came from, in manifest order) and `info.json`: the classes, the
`preprocessing` the images went through and the `backbone` recipe that made the features.
`data/resampled/train.npz` (the resample stage) holds the training features after SMOTE, and
`metrics/smote.json` its class counts. `metrics/cv.json` (the crossval stage) holds the
cross-validated scores of the head and the baseline on these features.
"""

import json
from pathlib import Path

import numpy as np

from fashion.errors import missing, outdated

INFO_FILE = "info.json"


def save_arrays(path, **arrays):
    """np.savez with the same bytes for the same arrays: numpy stamps each member of the .npz with the time of
    writing, and DVC would hash two identical runs differently. Members are .npy files, uncompressed, as
    np.load reads them."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                              force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def read_info(features_dir):
    path = Path(features_dir) / INFO_FILE
    if not path.is_file():
        raise missing(path)
    return json.loads(path.read_text())


def load_split(features_dir, split):
    """(features, labels) of one split from an extract (or resample) output folder."""
    features, labels, _ = load_split_rows(features_dir, split)
    return features, labels


def load_split_rows(features_dir, split):
    """(features, labels, rows) of one split of the extract stage's output."""
    path = Path(features_dir) / f"{split}.npz"
    if not path.is_file():
        raise missing(path)
    with np.load(path, allow_pickle=False) as arrays:
        rows = arrays["rows"] if "rows" in arrays else None  # the resampled split has no image rows
        return arrays["features"], arrays["labels"], rows


def features_of_rows(features_dir, split, rows):
    """One split's features, in the order of the image store `rows` (a clear error if some are missing)."""
    features, _, feature_rows = load_split_rows(features_dir, split)
    where = {int(row): i for i, row in enumerate(feature_rows)}
    absent = [int(row) for row in rows if int(row) not in where]
    if absent:
        raise outdated(Path(features_dir) / f"{split}.npz",
                       f"has no features for {len(absent)} {split} image(s): it is older than the prepared data")
    return features[[where[int(row)] for row in rows]]
