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


class UnwritableOutput(PipelineError):
    """An output a stage cannot write. Under `dvc repro`, DVC may have removed the stage's earlier outputs
    before the stage started: `run_stage` says how to bring them back."""


def missing(path, what=None):
    """The error for an output of an earlier stage that is not there yet."""
    return PipelineError(f"{path} not found{f' ({what})' if what else ''}; run `dvc repro` first")


def outdated(path, problem):
    """The error for an output of an earlier stage that cannot be used as it is (old, truncated, mismatched)."""
    return PipelineError(f"{path} {problem}; run `dvc repro` again")


class ShortNames(logging.Formatter):
    """`INFO prepare: ...`: a logger named by its module (getLogger(__name__)) shows the module's last name;
    the script run with `python -m` (logger `__main__`) shows its own."""

    def format(self, record):
        name = record.name
        if name == "__main__":
            spec = getattr(sys.modules.get("__main__"), "__spec__", None)
            name = spec.name if spec is not None else name
        record = logging.makeLogRecord({**record.__dict__, "name": name.rsplit(".", 1)[-1]})
        return super().format(record)


def run_stage(main, level=logging.INFO):
    """Run main() and exit with its return value (None: 0); a PipelineError becomes `error: ...` and exit 2."""
    handler = logging.StreamHandler()
    handler.setFormatter(ShortNames("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    try:
        status = main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        if isinstance(err, UnwritableOutput):
            spec = getattr(sys.modules.get("__main__"), "__spec__", None)
            module = spec.name if spec is not None else getattr(main, "__module__", "")
            stage = module.rsplit(".", 1)[-1] if module.startswith("stages.") else None
            if stage is not None:
                print(f"note: under `dvc repro`, DVC removes a stage's earlier outputs before it runs; once the "
                      f"path is fixed, `dvc checkout {stage}` brings back the ones dvc.lock records, or "
                      "`dvc repro` makes them anew", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted: no outputs were written", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status or 0)
