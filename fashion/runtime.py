"""TensorFlow's quiet import and seeding, in one place.

fashion/__init__.py sets TensorFlow's environment and calls `quiet_tensorflow_import`, so that whichever
module imports TensorFlow first (Keras, scikit-learn's helpers, a stage), its C++ start-up lines are
held back (PIPELINE_VERBOSE=1 shows them). Stages that do not use TensorFlow never import it.
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile


@contextlib.contextmanager
def stderr_discarded():
    """Send what the process writes to its stderr (file descriptor 2, C++ libraries included) to a temporary
    file for the duration; if the block raises, that text is written to stderr after all, then the error."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            except BaseException:
                os.dup2(saved, 2)
                sink.seek(0)
                os.write(2, sink.read())
                raise
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader with stderr held back: absl writes its start-up lines before any log
    level applies, so only the file descriptor can hold them back."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with stderr_discarded():
            self.loader.exec_module(module)
        # TensorFlow gives its Python logger a handler of its own when it is imported before logging is configured:
        # its warnings would print twice, in two formats. They go through the stage's logging configuration alone.
        logging.getLogger("tensorflow").handlers.clear()


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual and hands it to _QuietLoader; every other import is left alone."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: TensorFlow's own import machinery runs undisturbed
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_import():
    """Hold back TensorFlow's start-up lines whenever it is first imported (not with PIPELINE_VERBOSE=1)."""
    from fashion import VERBOSE

    if not VERBOSE and "tensorflow" not in sys.modules and not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


def make_reproducible(seed):
    """Same params, same data, same machine: same weights. Call before building any model."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def steady(dataset):
    """The tf.data pipeline with tf.data's autotuning off; its elements and their order are unchanged.

    Autotuning runs a background thread that resizes buffers and thread pools while the model trains. On 2
    cores it competed with training: 2 epochs in 5 of the CNN took 1.27 s instead of 0.7 s, whatever the
    batch held (docs/default-run.md). The pipelines here are a fixed prefetch of one batch; nothing is left to tune.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
