"""What a model was trained on, in its record (models/<kind>.json, key `trained_on`), said in one line.

The data (source, folder, classes, training photos per class, from prepare's summary), the backbone and
its weights where the model has one, and a digest of the params it was trained with. `predict` and
`serve` print the line beside every answer, so a model trained on the generated default never answers a
real photo as if it had seen real ones.
"""

import hashlib
import json

RECORD_KEY = "trained_on"


def data_record(summary):
    """The data part of the record, from prepare's summary.json."""
    counts, classes = summary["counts"], list(summary["classes"])
    return {"source": summary["source"], "path": summary["path"], "classes": classes,
            "train_images": {name: counts[name]["train"] for name in classes}}


def params_digest(params):
    """The first 12 hex digits of the SHA-256 of the validated params, as JSON with sorted keys."""
    text = json.dumps(params.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def trained_on(data, params, backbone=None):
    """The whole record: `data` (data_record), the backbone record's model and weights, the params digest."""
    record = dict(data)
    if backbone is not None:
        record["backbone"], record["weights"] = backbone["model"], backbone["weights"]
    record["params_sha256"] = params_digest(params)
    return record


def describe(record):
    """One line: 'trained on 791 generated images (the embedded default, data/synthetic): boat_neck 95, ...;
    mobilenet, weights weights/...h5; params 1a2b3c4d5e6f'. None for a record without it (an older model)."""
    if not isinstance(record, dict) or "train_images" not in record:
        return None
    counts = record["train_images"]
    total = sum(counts.values())
    if record["source"] == "synthetic":
        what = f"{total:,} generated images (the embedded default, {record['path']}; not photos)"
    elif record["source"] == "fashion_mnist":
        what = f"{total:,} Fashion-MNIST images ({record['path']})"
    else:
        what = f"{total:,} photos from {record['path']}"
    parts = [f"trained on {what}: " + ", ".join(f"{name} {n:,}" for name, n in counts.items())]
    if "backbone" in record:
        weights = record["weights"]
        if isinstance(weights, dict):
            weights = ", ".join(f"{name}: {value}" for name, value in weights.items())
        parts.append(f"{record['backbone']}, weights {'RANDOM' if weights in (None, 'none') else weights}")
    parts.append(f"params {record['params_sha256']}")
    return "; ".join(parts)
