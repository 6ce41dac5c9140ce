"""One place that turns a user's mistake into a clear message and a non-zero exit.

Stages (and the prediction command) raise `PipelineError` for anything the user can fix (bad
params, bad data, missing files). `run_stage` prints it without a traceback; anything else is a
bug and keeps its traceback. `missing` and `outdated` word the two errors about the outputs of
earlier stages, so every stage says the same thing about them.
"""

import logging
import sys

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class PipelineError(Exception):
    """A problem with the user's data, params or environment, with how to fix it."""


def missing(path, what=None):
    """The error for an output of an earlier stage that is not there yet."""
    return PipelineError(f"{path} not found{f' ({what})' if what else ''}; run `dvc repro` first")


def outdated(path, problem):
    """The error for an output of an earlier stage that cannot be used as it is (old, truncated, mismatched)."""
    return PipelineError(f"{path} {problem}; run `dvc repro` again")


def run_stage(main, level=logging.INFO):
    """Run main() and exit with its return value (None: 0); a PipelineError becomes `error: ...` and exit 2."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        status = main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted: no outputs were written", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status or 0)
