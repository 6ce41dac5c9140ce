"""The extract stage's `ray` engine: the backbone as a pool of Ray actors, on this machine or a cluster.

Ray is imported here only, and this module only when `features.engine` is ray, so the local engine
never needs Ray installed. The driver (the extract stage) sends the row numbers of the images to
compute; each actor builds the backbone once and reads its images from the image store itself, by
row, so no pixels travel through Ray: images.npy (and a weights file, if any) must be readable at
the same absolute path on every node. Features come back to the driver a batch at a time and go
straight into one preallocated array, at the position each batch carries; every position must come
back exactly once before anything is written.

A worker lost mid-run (killed, out of memory, its node gone) is restarted and its batches retried
by Ray, up to MAX_RESTARTS / MAX_TASK_RETRIES times; past that the run fails and, as with any
failure, the stage writes nothing.
"""

import dataclasses
import logging
import socket
import warnings
from pathlib import Path

import numpy as np

from fashion.data.dataset import ImageStore
from fashion.errors import PipelineError
from fashion.features.frozen_backbone import build_extractor

log = logging.getLogger(__name__)

# How often one actor may be restarted, and one batch retried, after its process died.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
# Each actor asks for one CPU: TensorFlow then uses the cores it sees, as the local engine does.
CPUS_PER_WORKER = 1
# How long to wait for a cluster's address to answer before calling it unreachable.
CONNECT_TIMEOUT_S = 5


def connect(settings):
    """Join the cluster at settings.address ('host:port' or 'auto'), or start one on this machine
    when it is empty; check it has room for the workers. Returns a function that disconnects again
    (a no-op when this process was already connected, e.g. by a caller that owns the cluster)."""
    try:
        import ray
    except ImportError:
        raise PipelineError("features.engine is ray, but Ray is not installed; install it with "
                            "pip install -r requirements.txt (ray[data]), or set features.engine=local") from None
    if ray.is_initialized():
        _check_room(ray, settings, "this process's Ray cluster")
        return lambda: None
    address = settings.address
    where = f"features.ray.address={address!r}" if address else "a local Ray cluster"
    if address and address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False)
    except Exception as err:  # ConnectionError for a missing cluster; Ray raises others for bad ones
        raise PipelineError(f"could not join the Ray cluster at {where} ({type(err).__name__}: {err}); "
                            "start one with `ray start --head` and give its address (host:port), or leave "
                            "features.ray.address empty to start one on this machine. Nothing was written") from None
    try:
        _check_room(ray, settings, where)
    except PipelineError:
        ray.shutdown()
        raise
    log.info("ray engine: %s, %g CPUs, %g GPUs", where, *_resources(ray))
    return ray.shutdown


def _check_reachable(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise PipelineError(f"no Ray cluster answers at features.ray.address={address!r} ({err}); start one there "
                            "with `ray start --head --port=PORT`, fix the address, or leave it empty to start one on "
                            "this machine. Nothing was written") from None


def _resources(ray):
    total = ray.cluster_resources()
    return total.get("CPU", 0), total.get("GPU", 0)


def _check_room(ray, settings, where):
    """Actors that do not fit would wait forever: say so instead."""
    cpus, gpus = _resources(ray)
    workers, num_gpus = settings.workers, settings.num_gpus
    if cpus < workers * CPUS_PER_WORKER or gpus < workers * num_gpus:
        raise PipelineError(
            f"features.ray.workers={workers} with features.ray.num_gpus={num_gpus:g} needs "
            f"{workers * CPUS_PER_WORKER} CPUs and {workers * num_gpus:g} GPUs, but {where} has {cpus:g} CPUs and "
            f"{gpus:g} GPUs; lower features.ray.workers or num_gpus, or add nodes (ray start --address=HEAD:PORT)")


class BackboneWorker:
    """One Ray actor: builds the backbone once, then turns batches of (position, row) into features."""

    def __init__(self, recipe, image_size, store_path):
        self.extractor = build_extractor(recipe, image_size)
        self.store = ImageStore(store_path)

    def __call__(self, batch):
        positions, rows = batch["data"][:, 0], batch["data"][:, 1]
        return {"position": positions, "features": self.extractor(self.store.read(rows))}


def extract_features(recipe, image_size, store_path, rows, dim, settings, batch_size, progress=None, on_batch=None):
    """(len(rows), dim) float32 features of the images at `rows` of the store, in that order, computed
    by settings.workers actors of the connected Ray cluster; progress.update and on_batch(positions in
    rows, their features) per batch back."""
    import ray

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # batches come back in order; positions are still checked
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # the stage's own progress lines say enough
    pairs = np.stack([np.arange(len(rows), dtype=np.int64), np.asarray(rows, dtype=np.int64)], axis=1)
    # One block per batch: the unit Ray hands to an actor, and retries when the actor dies.
    blocks = [pairs[start:start + batch_size] for start in range(0, len(pairs), batch_size)]
    remote = dict(num_cpus=CPUS_PER_WORKER, max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)
    if settings.num_gpus:
        remote["num_gpus"] = settings.num_gpus
    with warnings.catch_warnings():
        # Ray 2.60 warns that max_restarts / max_task_retries as keywords are deprecated, yet offers no other
        # way to bound them (its default is to retry forever, which hides a worker that always crashes).
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", category=DeprecationWarning)
        computed = ray.data.from_numpy(blocks).map_batches(
            BackboneWorker,
            fn_constructor_args=(_with_absolute_paths(recipe), image_size, str(Path(store_path).resolve())),
            batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=settings.workers),
            **remote)

    features = np.empty((len(rows), dim), dtype=np.float32)
    times_seen = np.zeros(len(rows), dtype=np.int64)
    for batch in computed.iter_batches(batch_size=None, batch_format="numpy"):
        positions = batch["position"]
        features[positions] = batch["features"]
        np.add.at(times_seen, positions, 1)
        if on_batch is not None:
            on_batch(positions, batch["features"])
        if progress is not None:
            progress.update(len(positions))
    lost, doubled = np.flatnonzero(times_seen == 0), np.flatnonzero(times_seen > 1)
    if len(lost) or len(doubled):
        raise RuntimeError(f"the Ray engine returned {len(lost)} of {len(rows)} images never (e.g. row "
                           f"{rows[lost[0]] if len(lost) else '-'}) and {len(doubled)} more than once (e.g. row "
                           f"{rows[doubled[0]] if len(doubled) else '-'}); nothing was written")
    return features


def _with_absolute_paths(recipe):
    """The recipe with weights files as absolute paths: actors do not run in the driver's folder."""
    def absolute(value):
        return value if value in ("none", "imagenet") else str(Path(value).resolve())

    weights = recipe.weights
    weights = {name: absolute(value) for name, value in weights.items()} if isinstance(weights, dict) \
        else absolute(weights)
    return dataclasses.replace(recipe, weights=weights)
