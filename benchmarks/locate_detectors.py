"""The face and pose detectors side by side on every photo: what each finds, and how fast.

    nice -n 10 python benchmarks/locate_detectors.py OUT [--photos ../shared/data/necklines]
        [--detectors mtcnn blazeface_short blazeface_full pose]

Each detector runs alone over every photo (decoded beforehand, as prepare decodes them), one photo at a
time as prepare calls it; its first call (building the model) is not timed. Writes OUT/<detector>.json:
per photo what it found (faces: x, y, w, h, score of every face, BlazeFace's as the model draws them; pose: score, presence, the 33 landmarks
and their visibility), and photos/s by the wall clock and per CPU second. `benchmarks/locate_report.py OUT`
turns these files into the tables of docs/locate.md.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fashion.data import faces, pose, tflite  # noqa: E402
from fashion.data.files import walk_image_files  # noqa: E402
from fashion.data.images import decode_rgb  # noqa: E402

DETECTORS = ("mtcnn", "blazeface_short", "blazeface_full", "pose")


def find(detector, rgb):
    """What one detector finds in a photo, as plain JSON data."""
    if detector == "pose":
        found = pose.find_pose(rgb)
        return None if found is None else {
            "score": round(found.score, 4), "presence": round(found.presence, 4), "side": max(rgb.shape[:2]),
            "points": found.points.round(1).tolist(), "visibility": found.visibility.round(4).tolist()}
    if detector == "mtcnn":
        return [[round(v, 2) for v in face] for face in faces.detect_faces(rgb, detector)]
    # BlazeFace's own boxes, before faces.AS_MTCNN: the report measures that conversion from them
    return [[*(round(v, 2) for v in box), round(score, 4)] for score, box, _ in tflite.detect(faces.BLAZEFACE[detector], rgb)]


def clocks():
    times = os.times()
    return time.perf_counter(), times.user + times.system


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "necklines")
    parser.add_argument("--detectors", nargs="+", choices=DETECTORS, default=list(DETECTORS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = list(walk_image_files(args.photos, args.photos, []))
    images = [decode_rgb(file) for file in files]
    for detector in args.detectors:
        find(detector, images[0])  # builds the model: not part of the rate
        wall, cpu = clocks()
        found = [find(detector, image) for image in images]
        wall_end, cpu_end = clocks()
        result = {"detector": detector, "photos": len(images), "cpu": cpu_name(), "cpus": os.cpu_count(),
                  "photos_per_s_wall": round(len(images) / (wall_end - wall), 2),
                  "photos_per_cpu_s": round(len(images) / (cpu_end - cpu), 2),
                  "load_average": round(os.getloadavg()[0], 1),
                  "found": {str(file.relative_to(args.photos)): item for file, item in zip(files, found)}}
        (args.out / f"{detector}.json").write_text(json.dumps(result))
        print(json.dumps({k: v for k, v in result.items() if k != "found"}), flush=True)


if __name__ == "__main__":
    main()
