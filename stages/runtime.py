"""TensorFlow's environment and seeding, in one place.

Importing this module sets the environment and imports TensorFlow quietly, before Keras loads it:
the project runs on TensorFlow only, and TensorFlow's C++ start-up messages (absl's "All log
messages before absl::InitializeLog()", "Could not find cuda drivers", "failed call to cuInit", the
CPU-instructions notice) and its internal errors such as node_def_util's would bury the stages'
own lines in `dvc repro`'s output. PIPELINE_VERBOSE=1 brings them all back. Import it before the
first `import keras`.
"""

import contextlib
import logging
import os
import sys
import tempfile

# PIPELINE_VERBOSE=1: TensorFlow logs as it does by default (an explicit TF_CPP_MIN_LOG_LEVEL is kept either way).
VERBOSE = os.environ.get("PIPELINE_VERBOSE", "0") not in ("", "0")

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if VERBOSE else "3")


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


if VERBOSE or "tensorflow" in sys.modules:
    import tensorflow  # noqa: E402,F401
else:
    # absl writes its start-up lines before any log level applies: only the file descriptor can hold them back.
    with stderr_discarded():
        import tensorflow  # noqa: E402,F401

# TensorFlow gives its Python logger a handler of its own when it is imported before logging is configured: its
# warnings would print twice, in two formats. They go through the stage's logging configuration alone.
logging.getLogger("tensorflow").handlers.clear()


def make_reproducible(seed):
    """Same params, same data, same machine: same weights. Call before building any model."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
