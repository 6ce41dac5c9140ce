"""Adding 1 % new photos to the 20,000-image benchmark set: the re-run of prepare + extract against the
full run (run by hand, not in CI).

Makes N + N/100 distinct JPEGs with benchmarks/prepare_memory.py's generator, then, in a scratch copy
of the repository (MobileNet 1.0 with the real weights from ../shared, 224 px, both caches on):

1. the full run: the real `python -m stages.prepare` and `python -m stages.extract` on the first N photos;
2. the 1 % new photos are added to the folder, and both stages run again (the caches of step 1 in place);
3. from scratch, in a second copy with empty caches, both stages on all N + N/100 photos.

It reports each run's time and peak RSS (per stage process), the re-run's share of the full run's time,
and how the re-run's features compare with the from-scratch ones (the same rows in the same order: max
absolute difference, and how many images are bit-identical, which those computed in the same batches are).

    python benchmarks/incremental.py [--images 20000] [--added 0.01] [--engine local]
"""

import argparse
import json
import os
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
sys.path.insert(0, str(REPO / "benchmarks"))

from prepare_memory import make_photos  # noqa: E402
from fashion.data import dataset  # noqa: E402
from fashion.paths import Paths  # noqa: E402

WEIGHTS = REPO.parent / "shared/weights/mobilenet_1.0_224_no_top.weights.h5"


def scratch_repo(root, photos, engine):
    """A copy of the repository's code with params.yaml pointing at `photos`; caches in root/.cache."""
    for code in ("stages", "fashion"):
        shutil.copytree(REPO / code, root / code, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(source="folder", path=str(photos), image_size=224, cache=True)
    params["features"].update(weights=str(WEIGHTS), cache=True, engine=engine)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def run_stage(repo, stage):
    """Run `python -m stages.<stage>` in repo; (seconds, peak RSS in MB) of that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", f"stages.{stage}"], cwd=repo, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    log = process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"stages.{stage} failed in {repo}:\n{log[-3000:]}")
    reused = [line.split(": ", 1)[-1] for line in log.splitlines() if "reused" in line]
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024), "cache": reused[-1:]}


def run_pipeline(repo, what):
    prepare, extract = run_stage(repo, "prepare"), run_stage(repo, "extract")
    result = {"prepare": prepare, "extract": extract, "seconds": round(prepare["seconds"] + extract["seconds"], 1)}
    print(what, json.dumps(result), flush=True)
    return result


def features_by_path(repo):
    """{source path: features} of every prepared image (the manifest's path, relative to data.path)."""
    records = {r["row"]: r["path"] for r in dataset.read_manifest(Paths(repo).prepared)}
    found = {}
    for split in dataset.SPLITS:
        with np.load(Paths(repo).features / f"{split}.npz", allow_pickle=False) as arrays:
            for row, features in zip(arrays["rows"], arrays["features"]):
                found[records[int(row)]] = features
    return found


def link_photos(source, target, indices):
    """Hard links (same size and mtime: the decode cache's key) of the photos with these numbers."""
    for path in source.glob("*/*.jpg"):
        if int(path.stem) in indices:
            (target / path.parent.name).mkdir(parents=True, exist_ok=True)
            os.link(path, target / path.parent.name / path.name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--added", type=float, default=0.01, help="share of new photos added for the re-run")
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    args = parser.parse_args()
    added = max(1, round(args.images * args.added))

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        start = time.perf_counter()
        make_photos(scratch / "all", args.images + added)
        print(f"wrote {args.images + added} photos in {time.perf_counter() - start:.0f} s", flush=True)
        photos = scratch / "photos"
        link_photos(scratch / "all", photos, set(range(args.images)))

        repo = scratch_repo(scratch / "repo", photos, args.engine)
        full = run_pipeline(repo, f"full run, {args.images} photos:")
        link_photos(scratch / "all", photos, set(range(args.images, args.images + added)))
        rerun = run_pipeline(repo, f"re-run after adding {added}:")
        scratch_run = run_pipeline(scratch_repo(scratch / "from_scratch", photos, args.engine),
                                   f"from scratch, {args.images + added} photos:")

        incremental, fresh = features_by_path(repo), features_by_path(scratch / "from_scratch")
        assert incremental.keys() == fresh.keys(), "the two runs prepared different photos"
        differences = np.array([np.abs(incremental[path] - fresh[path]).max() for path in fresh])

    result = {"images": args.images, "added": added, "engine": args.engine, "full_run": full, "rerun": rerun,
              "from_scratch": scratch_run, "rerun_share_of_full_run": round(rerun["seconds"] / full["seconds"], 3),
              "max_abs_difference": float(differences.max()),
              "bit_identical_images": int((differences == 0).sum()), "compared_images": len(differences)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
