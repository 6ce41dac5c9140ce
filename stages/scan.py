"""Stage `scan`: list the photo folder (data.path) in data/inventory.json, which prepare depends on.

Marked `always_changed` in dvc.yaml: it reads the folder on every run, so that a dangling symlink or
a loop is skipped with a reason instead of stopping DVC's hashing (fashion/data/inventory.py). Running
first, it also checks that every output of the pipeline can be written (fashion/preflight.py).
"""

import logging

from fashion.atomic import check_writable, write_json
from fashion.data.inventory import scan
from fashion.errors import run_stage
from fashion.params import load_params
from fashion.paths import Paths
from fashion.preflight import check_pipeline_outputs

log = logging.getLogger(__name__)


def main(paths=Paths()):
    data = load_params().data
    check_pipeline_outputs(paths.root)  # scan runs first on every `dvc repro`: before DVC removes any output
    check_writable(paths.inventory)
    inventory = scan(data.path, data.source, paths.scan_cache if data.cache else None)
    write_json(paths.inventory, inventory)
    log.info("%s: %d files, %d skipped (listed with their reasons in %s)", data.path, len(inventory["files"]),
             len(inventory["skipped"]), paths.inventory)


if __name__ == "__main__":
    run_stage(main)
