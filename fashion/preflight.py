"""Before DVC runs the pipeline: every output that dvc.yaml declares can be written.

DVC removes a stage's earlier outputs just before it runs the stage's command, so a stage that finds
one of its outputs unwritable has already lost the others (`models/head.keras` gone because
`plots/head` cannot be written). The `scan` stage runs first on every `dvc repro` (it is
`always_changed`), and checks every declared output of every stage, before DVC has removed any.
"""

from pathlib import Path

import yaml

from fashion.atomic import check_writable
from fashion.errors import PipelineError, UnwritableOutput

# The keys of a dvc.yaml stage that list its outputs (an entry is a path, or a one-key mapping path: options).
OUTPUT_KEYS = ("outs", "metrics", "plots")


def declared_outputs(dvc_yaml):
    """Every output path the stages of a dvc.yaml declare, in stage order, relative to its folder."""
    try:
        stages = yaml.safe_load(Path(dvc_yaml).read_text())["stages"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise PipelineError(f"cannot read the stages of {dvc_yaml}: {err}") from None
    outputs = []
    for stage in stages.values():
        for key in OUTPUT_KEYS:
            for entry in stage.get(key) or []:
                outputs.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return outputs


def check_pipeline_outputs(root=Path(".")):
    """Raise UnwritableOutput for the first declared output of dvc.yaml (under `root`) that cannot be written,
    saying that nothing was removed."""
    root = Path(root)
    dvc_yaml = root / "dvc.yaml"
    if not dvc_yaml.is_file():  # a stage run outside the repository (a test's folder): nothing declared
        return
    try:
        check_writable(*(root / output for output in declared_outputs(dvc_yaml)))
    except UnwritableOutput as err:
        raise UnwritableOutput(f"{err}. Checked before any stage ran: no output of the pipeline was removed")
