"""The tables of docs/locate.md from benchmarks/locate_detectors.py's files (and a prepared manifest).

    python benchmarks/locate_report.py OUT [--manifest data/prepared/manifest.csv]

Prints, as Markdown: each detector's photos/s and found rate by class; how BlazeFace's boxes relate to
MTCNN's (fashion.data.faces.AS_MTCNN) and where the face lies relative to BlazePose's shoulders
(fashion.data.locate.FROM_SHOULDERS), both as medians over the photos where both found the wearer; and,
with --manifest (a prepare run with data.locate auto), the photos by locator and view per class, and
what became of the photos where MTCNN finds no face.
"""

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fashion.data import faces, locate, pose  # noqa: E402

THRESHOLDS = faces.MIN_CONFIDENCE


def label(path):
    return path.split("/")[0]


def largest(found, threshold):
    return locate.choose_face([tuple(face) for face in found], threshold)


def usable_pose(found):
    """The benchmark's pose record as (points, visibility) when fashion.data.locate would use it, else None."""
    if not found or found["presence"] < pose.MIN_PRESENCE:
        return None
    points = np.array(found["points"])
    span = np.hypot(*(points[pose.LEFT_SHOULDER] - points[pose.RIGHT_SHOULDER]))
    return points if span >= locate.MIN_SHOULDER_SPAN * found["side"] else None


def detector_table(results):
    classes = sorted({label(path) for result in results.values() for path in result["found"]})
    print("| detector | photos/s (wall) | photos per CPU s | found | " + " | ".join(classes) + " |")
    print("|---" * (4 + len(classes)) + "|")
    for name, result in results.items():
        found = {path for path, item in result["found"].items()
                 if (item if name == "pose" else largest(item, THRESHOLDS[name])) is not None}
        by_class = Counter(label(path) for path in found)
        totals = Counter(label(path) for path in result["found"])
        print(f"| {name} | {result['photos_per_s_wall']} | {result['photos_per_cpu_s']} | {len(found)}/{result['photos']} "
              f"({len(found) / result['photos']:.0%}) | " + " | ".join(f"{by_class[c]}/{totals[c]}" for c in classes) + " |")
    first = next(iter(results.values()))
    print(f"\nCPU: {first['cpu']}, {first['cpus']} cores; load average {', '.join(str(r['load_average']) for r in results.values())}")


def calibration(results):
    mtcnn = {path: largest(item, THRESHOLDS["mtcnn"]) for path, item in results["mtcnn"]["found"].items()}
    for name in ("blazeface_short", "blazeface_full"):
        if name not in results:
            continue
        pairs = [(mtcnn[path], largest(item, THRESHOLDS[name])) for path, item in results[name]["found"].items()]
        pairs = np.array([(m[:4], b[:4]) for m, b in pairs if m and b])
        m, b = pairs[:, 0], pairs[:, 1]
        print(f"{name} -> MTCNN over {len(pairs)} photos: width x{np.median(m[:, 2] / b[:, 2]):.3f}, "
              f"height x{np.median(m[:, 3] / b[:, 3]):.3f}, top {np.median((m[:, 1] - b[:, 1]) / b[:, 3]):+.3f} heights")
    if "pose" in results:
        rows = []
        for path, item in results["pose"]["found"].items():
            points, face = usable_pose(item), mtcnn.get(path)
            if points is None or face is None or points[pose.LEFT_SHOULDER][0] < points[pose.RIGHT_SHOULDER][0]:
                continue
            span = np.hypot(*(points[pose.LEFT_SHOULDER] - points[pose.RIGHT_SHOULDER]))
            mid_y = (points[pose.LEFT_SHOULDER][1] + points[pose.RIGHT_SHOULDER][1]) / 2
            rows.append((face[2] / span, face[3] / span, (mid_y - face[1]) / span))
        rows = np.array(rows)
        print(f"MTCNN face from the shoulders over {len(rows)} front views: width {np.median(rows[:, 0]):.3f}, "
              f"height {np.median(rows[:, 1]):.3f}, top above {np.median(rows[:, 2]):.3f} shoulder widths")


def manifest_tables(manifest, results):
    records = list(csv.DictReader(open(manifest)))
    classes = sorted({r["label"] for r in records})
    for column, values in (("locator", locate.PHOTO_LOCATORS), ("view", (*locate.VIEWS, ""))):
        print("\n| class | " + " | ".join(v or "unknown" for v in values) + " |")
        print("|---" * (1 + len(values)) + "|")
        for name in (*classes, None):
            counts = Counter(r[column] for r in records if name is None or r["label"] == name)
            print(f"| {name or '**all**'} | " + " | ".join(str(counts[v]) for v in values) + " |")
    if results and "mtcnn" in results:
        found = results["mtcnn"]["found"]
        missed = [r for r in records if not largest(found.get(r["path"], []), THRESHOLDS["mtcnn"])]
        counts = Counter((r["locator"], r["view"] or "unknown") for r in missed)
        print(f"\nThe {len(missed)} photos where MTCNN finds no face, by locator and view under data.locate auto:")
        for (locator, view), count in counts.most_common():
            print(f"- {locator}, {view}: {count}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--manifest", type=Path)
    args = parser.parse_args()
    results = {path.stem: json.loads(path.read_text()) for path in sorted(args.out.glob("*.json"))}
    results = {name: results[name] for name in ("mtcnn", "blazeface_short", "blazeface_full", "pose") if name in results}
    if results:
        detector_table(results)
        if "mtcnn" in results:
            calibration(results)
    if args.manifest:
        manifest_tables(args.manifest, results)


if __name__ == "__main__":
    main()
