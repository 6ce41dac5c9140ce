"""The library behind the pipeline's stages (stages/): data, features, models, evaluation, serving.

Importing any part of it sets TensorFlow's environment first, once: Keras on TensorFlow, and
TensorFlow's C++ start-up lines (absl's "All log messages before absl::InitializeLog()", "Could not
find cuda drivers", the CPU-instructions notice) and internal errors such as node_def_util's held
back, so that they do not bury the stages' own lines in `dvc repro`'s output. PIPELINE_VERBOSE=1
brings them back. TensorFlow itself is imported only by the modules that use it (fashion/runtime.py).
"""

import os

# PIPELINE_VERBOSE=1: TensorFlow logs as it does by default (an explicit TF_CPP_MIN_LOG_LEVEL is kept either way).
VERBOSE = os.environ.get("PIPELINE_VERBOSE", "0") not in ("", "0")

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if VERBOSE else "3")

from fashion.runtime import quiet_tensorflow_import  # noqa: E402  (after the environment it reads)

quiet_tensorflow_import()
