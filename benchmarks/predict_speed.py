"""Benchmark of the prediction command (run by hand, not in CI).

    python benchmarks/predict_speed.py [--images 1000] [--backbone mobilenet]

Trains a head on the real neckline photos (../shared/data/necklines, real MobileNet weights,
224 px) in a temporary folder, then classifies a folder of N photo files with the prediction
command's own code (decode + resize on a thread pool, a batch ahead of the model) and compares
its images/s with the extract stage's images/s for the same backbone (which reads already decoded
images from the image store). Target: predict >= 0.8x extract. Prints one JSON object.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fashion.paths import Paths  # noqa: E402
from fashion.serving.classify import load_classifier  # noqa: E402
from fashion.features.extraction import extract  # noqa: E402
from fashion.serving.classify import classify  # noqa: E402
from fashion.serving.table import find_images
from fashion.data.preparation import prepare  # noqa: E402
from fashion.features.smote import resample  # noqa: E402
from fashion.models.head import train_head  # noqa: E402
from fashion.timings import read_timing  # noqa: E402
from tests.helpers import make_params  # noqa: E402

NECKLINES = REPO.parent / "shared/data/necklines"
WEIGHTS = {"mobilenet": REPO.parent / "shared/weights/mobilenet_1.0_224_no_top.weights.h5",
           "mobilenet_v2": REPO.parent / "shared/weights/mobilenet_v2_1.0_224_no_top.weights.h5"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--backbone", default="mobilenet", choices=sorted(WEIGHTS))
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        params = make_params(**{"data.source": "folder", "data.path": str(NECKLINES), "model": args.backbone,
                                "features.weights": str(WEIGHTS[args.backbone]), "head.epochs": 20})
        paths = Paths(root)
        prepare(params, paths)
        extract(params, paths)
        resample(params, paths)
        train_head(params, paths)

        # N photo files: the real photos, repeated under new names until there are enough.
        photos = sorted(NECKLINES.rglob("*.jpg"))
        folder = root / "photos"
        folder.mkdir()
        for i in range(args.images):
            shutil.copy(photos[i % len(photos)], folder / f"{i:05d}.jpg")

        classifier = load_classifier("head", root / "models")
        entries = find_images([str(folder)])
        classify(classifier, entries[:args.batch_size], 0.8, args.batch_size)  # warm-up: graph tracing
        start = time.perf_counter()
        results = classify(classifier, entries, 0.8, args.batch_size)
        seconds = time.perf_counter() - start
        assert len(results) == args.images and not any(r["error"] for r in results)

    predict_rate = args.images / seconds
    print(json.dumps({
        "backbone": args.backbone, "images": args.images, "predict_seconds": round(seconds, 1),
        "predict_images_per_second": round(predict_rate, 1),
        "extract_images_per_second": read_timing(paths.timings("extract"))["images_per_second"],
        "ratio": round(predict_rate / read_timing(paths.timings("extract"))["images_per_second"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
