"""One place that turns a user's mistake into a clear message and a non-zero exit.

Stages raise `PipelineError` for anything the user can fix (bad params, bad data,
missing files). `run_stage` prints it without a traceback; anything else is a bug
and keeps its traceback.
"""

import logging
import sys

EXIT_USER_ERROR = 2


class PipelineError(Exception):
    """A problem with the user's data, params or environment, with how to fix it."""


def run_stage(main):
    """Run a stage's main() and turn a PipelineError into `error: ...` and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted: no outputs were written", file=sys.stderr)
        sys.exit(130)
