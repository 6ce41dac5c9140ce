"""What the neckline locator costs: the locator's images/s, and prepare with it, cold and cached.

    python benchmarks/locate_speed.py [--photos ../shared/data/necklines] [--detect 100]

1. The locator alone (fashion.data.locate.locate, as prepare calls it), data.locate face and auto, on the
   first --detect photos, decoded beforehand: images/s by the wall clock and by the process's CPU time
   (steadier on a shared machine). Each detector alone, on every photo: benchmarks/locate_detectors.py.
2. The library's prepare on every photo at 224 px, the README's neckline settings: with data.locate
   none, then face and auto with an empty decode cache (cold), then auto again (cached: no photo decoded or
   detected), each in a fresh folder. Prints one JSON line per measurement.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fashion.data import locate  # noqa: E402
from fashion.data.recipes import Preprocessing  # noqa: E402
from fashion.paths import Paths  # noqa: E402
from fashion.data.files import walk_image_files  # noqa: E402
from fashion.data.images import decode_rgb  # noqa: E402
from fashion.params import validate  # noqa: E402
from fashion.data.preparation import prepare  # noqa: E402


def clocks():
    times = os.times()
    return time.perf_counter(), times.user + times.system


def detector_speed(photos, count, locate_with):
    files = list(walk_image_files(photos, photos, []))[:count]
    images = [decode_rgb(file) for file in files]
    recipe = Preprocessing(224, "crop", {"top": 0.0, "bottom": 0.6, "left": 0.0, "right": 1.0}, locate_with,
                           {"top": 0.9, "bottom": 2.2, "half_width": 1.1})
    locate.locate(images[0], recipe)  # builds the models: not part of the rate
    wall, cpu = clocks()
    found = sum(locate.locate(image, recipe).located for image in images)
    wall_end, cpu_end = clocks()
    return {"measure": f"locator, locate {locate_with}", "images": len(images), "located": found,
            "images_per_s_wall": round(len(images) / (wall_end - wall), 2),
            "images_per_cpu_s": round(len(images) / (cpu_end - cpu), 2), "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0]}


def prepare_speed(photos, locate_with, cache_dir, label):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update({"source": "folder", "path": str(photos), "image_size": 224, "resize": "crop",
                           "region": {"top": 0.0, "bottom": 0.6, "left": 0.0, "right": 1.0}, "locate": locate_with})
    params["split"]["group"] = r"-(\d+)-\d+\.[a-z]+$"
    with tempfile.TemporaryDirectory() as out:
        wall, cpu = clocks()
        summary = prepare(validate(params), Paths(Path(out), prepared=Path(out) / "prepared", cache=cache_dir))
        wall_end, cpu_end = clocks()
    return {"measure": f"prepare, locate {locate_with}, {label}", "images": summary["totals"]["total"],
            "wall_s": round(wall_end - wall, 1), "cpu_s": round(cpu_end - cpu, 1),
            "load_average": os.getloadavg()[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=REPO.parent / "shared/data/necklines")
    parser.add_argument("--detect", type=int, default=100, help="photos for the detector's rate")
    args = parser.parse_args()
    for locate_with in ("face", "auto"):
        print(json.dumps(detector_speed(args.photos, args.detect, locate_with)), flush=True)
    with tempfile.TemporaryDirectory() as cache:
        print(json.dumps(prepare_speed(args.photos, "none", Path(cache) / "none", "cold")), flush=True)
        print(json.dumps(prepare_speed(args.photos, "face", Path(cache) / "face", "cold")), flush=True)
        print(json.dumps(prepare_speed(args.photos, "auto", Path(cache) / "auto", "cold")), flush=True)
        print(json.dumps(prepare_speed(args.photos, "auto", Path(cache) / "auto", "cached")), flush=True)


if __name__ == "__main__":
    main()
