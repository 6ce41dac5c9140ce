"""TensorFlow starts quietly in every stage; PIPELINE_VERBOSE=1 gives its own logging back."""

import os
import subprocess
import sys

from tests.helpers import REPO

START = "import os, fashion.runtime, keras; keras.ops.add(1, 1); print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"


def python(code, **env):
    """Run code in a fresh interpreter in the repository, with TensorFlow's switches only as given."""
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PIPELINE_VERBOSE")}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, **env}, capture_output=True,
                          text=True, timeout=300)


def test_tensorflow_starts_without_a_line_on_stderr():
    result = python(START)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.strip() == "3"


def test_pipeline_verbose_brings_tensorflows_logging_back():
    result = python(START, PIPELINE_VERBOSE="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_what_is_held_back_is_shown_when_the_block_fails():
    code = ("import os\nfrom fashion.runtime import stderr_discarded\n"
            "with stderr_discarded():\n    os.write(2, b'held back\\n')\n"
            "with stderr_discarded():\n    os.write(2, b'why it failed\\n')\n    raise ValueError('import failed')\n")
    result = python(code)
    assert result.returncode == 1
    assert "held back" not in result.stderr
    assert "why it failed" in result.stderr and "ValueError: import failed" in result.stderr
