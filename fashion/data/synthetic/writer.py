"""The stage `synthesize`: every image seeded on its own, rendered in worker processes, written as JPEGs.

`generate_dataset` writes <out>/<class>/<class>_0000.jpg, ...
"""

import functools
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fashion.atomic import atomic_dir, check_writable
from fashion.data.synthetic.painting import encode_jpeg, render_garment
from fashion.data.synthetic.scenes import NECKLINES
from fashion.errors import PipelineError
from fashion.params import PARAMS_FILE

log = logging.getLogger(__name__)

JPEG_QUALITY = 92
# Images are independent and every image has its own generator, so the output doesn't depend on the
# scheduling: they are rendered in worker processes, one per core (on threads the Python between numpy's and
# cv2's loops holds the GIL).
RENDER_WORKERS = os.cpu_count() or 1
RENDER_CHUNK = 16  # images per task sent to a worker


def generate_dataset(out_dir: Path, counts: dict[str, int], size: int, seed: int) -> dict[str, int]:
    """Write counts[c] JPEGs per class to out_dir/<class>/<class>_0000.jpg, ... and return the counts.

    Image i of a class gets its own generator, seeded by the child (class index, i) of
    SeedSequence(seed), so output is deterministic and changing one class's count leaves
    the other classes' files byte-identical. Everything is written to a temporary sibling
    directory first and renamed into place at the end, so a failure leaves no partial data
    set and an existing out_dir untouched. Sizes, counts and the seed come from params.yaml, already
    validated (fashion/params.py); the class names are the generator's to check.
    """
    counts = in_class_order(counts)
    with atomic_dir(out_dir) as tmp_dir:  # .<name>.tmp-<pid> beside out_dir, renamed into place on success
        _write_images(tmp_dir, counts, size, seed)
    return counts


def synthesize(params, paths):
    """The stage `synthesize`: the default data set from params' `seed` and `synthetic`, in paths.synthetic."""
    settings = params.synthetic
    try:  # params.py checks types and ranges; the class names are the generator's to check
        in_class_order(settings.counts)
    except ValueError as err:
        raise PipelineError(f"{PARAMS_FILE}: 'synthetic': {err}") from None
    check_writable(paths.synthetic)
    written = generate_dataset(paths.synthetic, settings.counts, settings.image_size, params.seed)
    log.info("wrote %d images of %d px to %s: %s", sum(written.values()), settings.image_size, paths.synthetic,
             ", ".join(f"{name} {count}" for name, count in written.items()))
    return written


def in_class_order(counts: dict[str, int]) -> dict[str, int]:
    """The counts in NECKLINES order; a class name that is not a neckline here is the caller's mistake."""
    unknown = sorted(str(name) for name in counts if name not in NECKLINES)
    if unknown:
        raise ValueError(f"unknown class(es) {unknown} in counts; expected names from {', '.join(NECKLINES)}")
    return {name: int(counts[name]) for name in NECKLINES if name in counts}


def _image_rng(seed: int, neckline: str, index: int) -> np.random.Generator:
    # Same as SeedSequence(seed).spawn(...)[class].spawn(...)[index], without spawning all siblings.
    key = (NECKLINES.index(neckline), index)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def _write_images(directory: Path, counts: dict[str, int], size: int, seed: int, workers: int | None = None) -> None:
    """Render in worker processes (spawned, so no state of this process is copied), write in order; on any error,
    stop before the pool returns. workers=1 renders in this process."""
    jobs = [(neckline, index) for neckline, count in counts.items() for index in range(count)]
    for neckline in counts:
        (directory / neckline).mkdir(parents=True)
    workers = min(workers or RENDER_WORKERS, max(1, len(jobs) // RENDER_CHUNK))
    render = functools.partial(_render_jpeg, size=size, seed=seed)
    if workers == 1:
        _write_in_order(directory, jobs, map(render, *zip(*jobs)))
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            _write_in_order(directory, jobs, pool.map(render, *zip(*jobs), chunksize=RENDER_CHUNK))
        except BaseException:
            # Drop the renders not yet started; leaving `with` waits for the running ones,
            # so nothing is still busy when the caller cleans up.
            pool.shutdown(cancel_futures=True)
            raise


def _write_in_order(directory: Path, jobs: list[tuple[str, int]], jpegs) -> None:
    for (neckline, index), jpeg in zip(jobs, jpegs):
        (directory / neckline / f"{neckline}_{index:04d}.jpg").write_bytes(jpeg)


def _render_jpeg(neckline: str, index: int, *, size: int, seed: int) -> bytes:
    image = render_garment(neckline, _image_rng(seed, neckline, index), size)
    return encode_jpeg(image, JPEG_QUALITY)
