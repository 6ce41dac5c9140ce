"""Where the default run's time goes: each stage of `dvc repro`, timed on its own, in a fresh clone.

    python benchmarks/stage_times.py [--keep DIR]

Clones the repository (committed state, so no caches and no outputs), then runs every stage's command
from dvc.yaml in the order `dvc repro` runs them, each as its own process as DVC starts it, and prints
seconds per stage and the total. The stages' own work and their Python/TensorFlow start-up are both in
each figure; `import_seconds` is the start-up alone (a process that imports the stage's module and
exits). Compare figures from one run on one machine, and say which CPU (printed first).
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def stage_order(clone):
    """The stages in the order `dvc repro` runs them (dvc dag's topological order)."""
    out = subprocess.run(["dvc", "dag", "--md"], cwd=clone, capture_output=True, text=True, check=True).stdout
    stages = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    edges = [line.strip().split("-->") for line in out.splitlines() if "-->" in line]
    ids = {}
    for line in out.splitlines():  # mermaid node lines: node1["prepare"]
        if '["' in line:
            node, name = line.strip().split('["', 1)
            ids[node.strip()] = name.rstrip('"]')
    after = {name: set() for name in stages}
    for a, b in edges:
        after[ids[b.strip()]].add(ids[a.strip()])
    order = []
    while len(order) < len(stages):
        ready = sorted(name for name in stages if name not in order and after[name] <= set(order))
        order.append(ready[0])
    return order, stages


def timed(command, cwd):
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", help="clone into this folder and keep it (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(args.keep or scratch) / "clone"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        order, stages = stage_order(clone)
        print(f"CPU: {cpu_name()}; {len(order)} stages in {clone}", flush=True)
        results = {}
        for name in order:
            command = stages[name]["cmd"]
            module = command.split("-m", 1)[1].split()[0]
            seconds = timed(command, clone)
            start_up = timed(f"{sys.executable} -c 'import {module}'", clone)
            results[name] = {"seconds": round(seconds, 1), "import_seconds": round(start_up, 1)}
            print(f"{name:12s} {seconds:6.1f} s   (of which start-up about {start_up:4.1f} s)", flush=True)
        total = sum(r["seconds"] for r in results.values())
        print(f"{'total':12s} {total:6.1f} s")
        print(json.dumps({"cpu": cpu_name(), "stages": results, "total_seconds": round(total, 1)}))


if __name__ == "__main__":
    main()
