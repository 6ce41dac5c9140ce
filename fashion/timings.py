"""How long a stage took: logged, and kept in .cache/timings/<stage>.json for benchmarks and people.

Timings stay out of every DVC-tracked output (models' records, metrics, dvc.lock): two runs that are
otherwise identical to the byte differ in them, and DVC would see a change where there is none.
"""

import contextlib
import json
import logging
from pathlib import Path

from fashion.atomic import write_json

log = logging.getLogger(__name__)


def record_timing(path, **values):
    """Write one stage's timings (seconds, rates) to `path`; a cache that cannot be written only logs why."""
    try:
        write_json(path, values)
    except OSError as err:
        log.debug("timings not kept in %s: %s", path, err)


def read_timing(path):
    """The timings a stage recorded, or {} when it has not run here."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads(Path(path).read_text())
    return {}
