"""The tag command's `ray` engine (`--engine ray`): chunks of the folder tagged by a pool of Ray actors.

Ray is imported here only, and this module only with `--engine ray`. Each actor loads the model and its
decision rule once, as the prediction command does, and turns a chunk of (path, file, error) entries into
the same CSV rows (`classify`, `csv_row`): only file paths travel through Ray, so the photos, models/ and this
project must be readable at the same absolute paths on every node. The cluster is features.ray's (the extract stage's):
its address, its number of workers (one CPU each), its GPUs per worker (fashion/features/ray_engine.py).
Chunks come back as each is done, in any order; the caller journals them and writes the CSV in the
folder's order, so the result is the local engine's.
"""

import os
from pathlib import Path

from fashion.features.ray_engine import CPUS_PER_WORKER, MAX_RESTARTS, MAX_TASK_RETRIES, connect


class TagWorker:
    """One Ray actor: the model and its rule, loaded once; chunks of entries in, CSV rows out."""

    def __init__(self, kind, models_dir, threshold, fallback, limits, batch_size):
        from fashion.serving.classify import load_classifier
        from fashion.serving.decision import load_rule

        self.classifier = load_classifier(kind, models_dir)
        self.rule = load_rule(kind, models_dir, fallback, threshold)
        self.limits, self.batch_size = limits, batch_size

    def tag(self, index, entries):
        from fashion.serving.classify import classify
        from fashion.serving.table import csv_row

        results = classify(self.classifier, [(shown, None if file is None else Path(file), error)
                                             for shown, file, error in entries], self.rule, self.batch_size,
                           self.limits)
        return index, [csv_row(r) for r in results]


def ray_chunks(settings, kind, models_dir, threshold, fallback, limits, batch_size):
    """A function chunks -> iterator of (chunk index, rows), as the actors finish them (any order)."""
    def run(chunks):
        import ray
        from ray.util import ActorPool

        disconnect = connect(settings)
        try:
            # the actors import this project from where the driver does, whatever their working folder
            project = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))
            remote = dict(num_cpus=CPUS_PER_WORKER, max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES,
                          runtime_env={"env_vars": {"PYTHONPATH": path}})
            if settings.num_gpus:
                remote["num_gpus"] = settings.num_gpus
            worker = ray.remote(**remote)(TagWorker)
            arguments = (kind, str(Path(models_dir).resolve()), threshold, fallback, limits, batch_size)
            pool = ActorPool([worker.remote(*arguments) for _ in range(settings.workers)])
            items = [(index, [(shown, None if file is None else str(Path(file).resolve()), error)
                              for shown, file, error in chunk]) for index, chunk in enumerate(chunks)]
            yield from pool.map_unordered(lambda actor, item: actor.tag.remote(*item), items)
        finally:
            disconnect()
    return run
