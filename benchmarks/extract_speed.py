"""Benchmarks of the transfer-learning branch (run by hand, not in CI).

    python benchmarks/extract_speed.py throughput [--images 256] [--backbones mobilenet,vgg16,...]
        images/s of the extract stage's streaming loop against plain model.predict on the same
        in-memory batch (decoding and I/O must not be the bottleneck: target >= 0.9x).
    python benchmarks/extract_speed.py memory [--images 20000]
        peak RSS of the real `python -m stages.extract` over an image store of that many images.
    python benchmarks/extract_speed.py ray [--images 1024] [--workers 2]
        images/s of the Ray engine (a local Ray cluster, that many workers) against the local engine on
        the same rows of the same store, in one run: end to end (the local engine building its backbone,
        the Ray engine starting the cluster and its actors) and the marginal rate without the start-up.
    python benchmarks/extract_speed.py epochs [--epochs 10]
        cached features + head against the original project's way (the frozen backbone inside the
        model, re-run on every epoch), on the neckline photos' train/validation split.

MobileNet uses the real weights in ../shared/weights; VGG16 and ResNet50 random weights (the
speed is the same). Needs `dvc repro prepare` run on ../shared/data/necklines at 224 px for
`throughput`, `ray` and `epochs` (see README "Benchmarks").
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fashion.data import dataset  # noqa: E402
from fashion.paths import Paths  # noqa: E402
from fashion.features.frozen_backbone import FeatureExtractor  # noqa: E402
from fashion.features.extraction import extract_features  # noqa: E402

WEIGHTS = {"mobilenet": REPO.parent / "shared/weights/mobilenet_1.0_224_no_top.weights.h5",
           "mobilenet_v2": REPO.parent / "shared/weights/mobilenet_v2_1.0_224_no_top.weights.h5"}


def extractor_for(name, precision="float32"):
    return FeatureExtractor(name, 224, weights=str(WEIGHTS.get(name, "none")), precision=precision)


def throughput(args):
    results = {}
    with dataset.ImageStore(args.prepared / dataset.IMAGES_FILE) as store:
        rows = np.arange(min(args.images, len(store)))
        images = store.read(rows)
        for name in args.backbones.split(","):
            for precision in args.precisions.split(","):
                extractor = extractor_for(name, precision)
                extract_features(extractor, store, rows[:args.batch], args.batch)  # warm up both paths
                x = extractor.preprocess_input(images.astype(np.float32))
                extractor.model.predict(x[:args.batch], batch_size=args.batch, verbose=0)
                start = time.perf_counter()
                extract_features(extractor, store, rows, args.batch)
                ours = len(rows) / (time.perf_counter() - start)
                start = time.perf_counter()
                extractor.model.predict(x, batch_size=args.batch, verbose=0)
                plain = len(rows) / (time.perf_counter() - start)
                key = f"{name}/{precision}"
                results[key] = {"extract_images_per_s": round(ours, 1), "predict_images_per_s": round(plain, 1),
                                "ratio": round(ours / plain, 2)}
                print(key, results[key], flush=True)
    return results


def memory(args):
    """A store of args.images images (tiled from the prepared photos), then the real stage command."""
    with tempfile.TemporaryDirectory() as scratch, dataset.ImageStore(args.prepared / dataset.IMAGES_FILE) as source:
        repo = Path(scratch)
        for code in ("stages", "fashion"):
            shutil.copytree(REPO / code, repo / code, ignore=shutil.ignore_patterns("__pycache__"))
        out = Paths(repo).prepared
        out.mkdir(parents=True)
        writer = dataset.ImageStoreWriter(out / dataset.IMAGES_FILE, source.size)
        records = dataset.read_manifest(args.prepared)
        for start in range(0, args.images, 256):
            picks = [records[i % len(records)] for i in range(start, min(start + 256, args.images))]
            writer.append(source.read([r["row"] for r in picks]))
        writer.close()
        tiled = [{**records[i % len(records)], "row": i} for i in range(args.images)]
        dataset.write_manifest(out / dataset.MANIFEST_FILE, tiled)
        shutil.copy(args.prepared / dataset.SUMMARY_FILE, out / dataset.SUMMARY_FILE)
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["features"]["weights"] = str(WEIGHTS["mobilenet"])
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.extract"], cwd=repo, check=True, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {"images": args.images, "seconds": round(seconds, 1), "images_per_s": round(args.images / seconds, 1),
              "peak_rss_mb": round(peak), "store_mb": round(args.images * 224 * 224 * 3 / 2**20)}
    print(result)
    return result


def ray_overhead(args):
    """The same rows through the local engine, then through the Ray engine on a local cluster, each over
    the first n and the first 2n rows: end to end (start-up included) and the marginal rate of the
    second n images, n / (time for 2n - time for n), in which each engine's start-up cancels out."""
    from fashion.features import ray_engine
    from fashion.features.frozen_backbone import build_extractor
    from fashion.data.recipes import BackboneRecipe
    from fashion.params_schema import Ray

    recipe = BackboneRecipe(model="mobilenet", weights=str(WEIGHTS["mobilenet"]), alpha=1.0, seed=42)
    store_path = args.prepared / dataset.IMAGES_FILE
    settings = Ray(address="", workers=args.workers, num_gpus=0)  # features.ray: a local cluster
    with dataset.ImageStore(store_path) as store:
        n = args.images // 2
        rows = np.arange(2 * n) % len(store)  # a small store is read round and round

        def local(rows):
            extractor = build_extractor(recipe, store.size)  # its start-up counts, as the actors' does
            return extract_features(extractor, store, rows, args.batch), extractor

        def distributed(rows):
            disconnect = ray_engine.connect(settings)  # a fresh local cluster each time: start-up included
            try:
                return ray_engine.extract_features(extractor.recipe, store.size, store_path, rows, extractor.dim,
                                                   settings, args.batch)
            finally:
                disconnect()

        _, extractor = local(rows[:1])  # TensorFlow imported before the clocks start (the actors import their own)
        seconds, features = {}, {}
        for name, run in (("local", lambda rows: local(rows)[0]), ("ray", distributed)):
            for count in (n, 2 * n):
                start = time.perf_counter()
                features[name] = run(rows[:count])
                seconds[name, count] = time.perf_counter() - start
                print(name, count, "images:", round(seconds[name, count], 1), "s", flush=True)
        difference = float(np.abs(features["ray"] - features["local"]).max())
    result = {"images": 2 * n, "batch": args.batch, "workers": args.workers, "cpu": cpu_model(),
              "cores": len(os.sched_getaffinity(0)), "max_abs_difference": difference}
    for name in ("local", "ray"):
        result[name] = {f"seconds_{n}": round(seconds[name, n], 1), f"seconds_{2 * n}": round(seconds[name, 2 * n], 1),
                        "images_per_s": round(2 * n / seconds[name, 2 * n], 1),
                        "marginal_images_per_s": round(n / (seconds[name, 2 * n] - seconds[name, n]), 1)}
    for key in ("images_per_s", "marginal_images_per_s"):
        result[f"ray_over_local_{key}"] = round(result["ray"][key] / result["local"][key], 2)
    return result


def cpu_model():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def epochs(args):
    """Same data, same head, same epochs: cached features against the backbone inside the model."""
    import keras

    from fashion.models.head import build_head
    from fashion.runtime import make_reproducible

    records = dataset.read_manifest(args.prepared)
    num_classes = len(dataset.read_summary(args.prepared)["classes"])
    with dataset.ImageStore(args.prepared / dataset.IMAGES_FILE) as store:
        (train_rows, train_y), (val_rows, val_y) = (dataset.split_arrays(records, s) for s in ("train", "validation"))
        train_images, val_images = store.read(train_rows), store.read(val_rows)

    # Both runs train the same head from the same seed: same initial weights, same dropout draws,
    # same batch order. Only where the features come from differs, so the accuracies should agree
    # and the times show what re-running the frozen backbone on every epoch costs.
    make_reproducible(42)
    start = time.perf_counter()
    extractor = extractor_for("mobilenet")
    # The extract stage's own loop: batches of 32 streamed from the image store, read ahead.
    with dataset.ImageStore(args.prepared / dataset.IMAGES_FILE) as store:
        train_x = extract_features(extractor, store, train_rows, 32)
        val_x = extract_features(extractor, store, val_rows, 32)
    make_reproducible(42)
    head = build_head(train_x, num_classes, 256, 0.5, 1e-3)
    history = head.fit(train_x, train_y, validation_data=(val_x, val_y), epochs=args.epochs, batch_size=32, verbose=0)
    cached = {"seconds": round(time.perf_counter() - start, 1),
              "val_accuracy": [round(a, 4) for a in history.history["val_accuracy"]]}
    print("cached features:", cached, flush=True)

    # The original project: backbone inside the model, so every epoch runs it on every image again.
    start = time.perf_counter()
    extractor = extractor_for("mobilenet")
    make_reproducible(42)
    head = build_head(train_x, num_classes, 256, 0.5, 1e-3)  # the same head, same initial weights
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Lambda(extractor.preprocess_input)(inputs)
    outputs = head(extractor.model(x, training=False))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train_images.astype(np.float32), train_y, validation_data=(val_images.astype(np.float32), val_y),
                        epochs=args.epochs, batch_size=32, verbose=0)
    inline = {"seconds": round(time.perf_counter() - start, 1),
              "val_accuracy": [round(a, 4) for a in history.history["val_accuracy"]]}
    print("backbone in the model:", inline, flush=True)
    for run in (cached, inline):
        run["best_val_accuracy"] = max(run["val_accuracy"])
    return {"epochs": args.epochs, "cached": cached, "backbone_in_model": inline,
            "speedup": round(inline["seconds"] / cached["seconds"], 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("throughput", "memory", "epochs", "ray"))
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backbones", default="mobilenet,mobilenet_v2,resnet50,vgg16")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (ray)")
    parser.add_argument("--prepared", type=Path, default=Paths(REPO).prepared, help="a prepare output folder at 224 px")
    args = parser.parse_args()
    args.images = args.images or {"memory": 20_000, "ray": 1024}.get(args.what, 256)
    result = {"throughput": throughput, "memory": memory, "epochs": epochs, "ray": ray_overhead}[args.what](args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
