"""Peak memory and speed of `prepare` on 20,000 real photos (run by hand, not in CI).

Makes N distinct JPEGs from the neckline photos in ../shared (each copy gets a unique
stamp of pixels, so deduplication keeps them all), runs the real stage command
`python -m stages.prepare` on them in a scratch copy of the repository, and reports the
child process's peak resident set size (ru_maxrss) and throughput.

    python benchmarks/prepare_memory.py [--images 20000] [--size 224]
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import yaml

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "necklines"


def make_photos(target, count):
    sources = sorted(PHOTOS.glob("*/*.jpg"))
    if not sources:
        sys.exit(f"no photos under {PHOTOS}")
    decoded = [(path.parent.name, cv2.imread(str(path))) for path in sources]
    for index in range(count):
        label, image = decoded[index % len(decoded)]
        image = image.copy()
        # 16 blocks of 4x4 pixels encode the copy number: JPEG keeps them distinct.
        for bit in range(16):
            image[:4, bit * 4:(bit + 1) * 4] = 255 if (index >> bit) & 1 else 0
        folder = target / label
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        start = time.perf_counter()
        make_photos(scratch / "photos", args.images)
        print(f"wrote {args.images} photos in {time.perf_counter() - start:.0f} s", flush=True)
        repo = scratch / "repo"
        for code in ("stages", "fashion"):
            shutil.copytree(REPO / code, repo / code, ignore=shutil.ignore_patterns("__pycache__"))
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["data"].update(source="folder", path=str(scratch / "photos"), image_size=args.size)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=repo, check=True,
                       stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads((repo / "data/prepared/summary.json").read_text())
        store_mb = (repo / "data/prepared/images.npy").stat().st_size / 2**20

    result = {"images": summary["totals"]["total"], "image_size": args.size, "seconds": round(seconds, 1),
              "images_per_second": round(summary["totals"]["total"] / seconds, 1),
              "peak_rss_mb": round(peak_mb), "images_npy_mb": round(store_mb)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
