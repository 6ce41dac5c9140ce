"""A model's decision rule as predict, serve and tag apply it: auto, review or unfamiliar for each photo.

The decide stage writes it beside the models (models/decisions/<kind>.json: the confidence threshold chosen
for evaluate.target_accuracy; familiar.npz/.json: the novelty reference and cutoff). A model loaded without
one (a run from before the decide stage) falls back to evaluate.confidence_threshold, without the
unfamiliar check, and the commands say so.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from fashion.digests import file_sha256
from fashion.errors import outdated
from fashion.features.familiarity import Familiarity, load_familiarity
from fashion.paths import Paths

AUTO, REVIEW, UNFAMILIAR = "auto", "review", "unfamiliar"
DECISIONS = (AUTO, REVIEW, UNFAMILIAR)
MEANING = {
    AUTO: "the top probability reaches the model's threshold: tagged automatically",
    REVIEW: "the top probability is below the model's threshold: a person should check it",
    UNFAMILIAR: "the photo is unlike every training photo (its backbone features are far from theirs): whatever "
                "the model says, it was not trained for photos like this",
}


@dataclass
class DecisionRule:
    """threshold: answer automatically at or above it (None: never, the target accuracy was out of reach);
    familiarity: the novelty check (None: not available); rule: the decide stage's record (None: fallback)."""

    threshold: float | None
    familiarity: Familiarity | None = None
    rule: dict | None = None
    origin: str = "evaluate.confidence_threshold: no decision rule for this model; run `dvc repro`"

    def decision(self, top, novelty=None):
        if self.familiarity is not None and novelty is not None and self.familiarity.unfamiliar(novelty):
            return UNFAMILIAR
        return AUTO if self.threshold is not None and top >= self.threshold else REVIEW

    @property
    def expected_accuracy(self):
        """What the decide stage expects of the photos answered automatically (None for a fallback rule)."""
        if not self.rule or not self.rule.get("reached"):
            return None
        return self.rule.get("accuracy_mean", self.rule.get("accuracy"))

    def describe(self):
        """One line for logs and /model."""
        if self.rule is None:
            return f"threshold {self.threshold:g} ({self.origin})"
        if self.threshold is None:
            return (f"no threshold reaches accuracy {self.rule['target_accuracy']:g} ({self.rule['source']}): "
                    "every photo goes to review")
        return (f"threshold {self.threshold:.4f}, chosen on {self.rule['source']} for accuracy "
                f"{self.rule['target_accuracy']:g}")

    def to_record(self):
        return {"threshold": self.threshold, "rule": self.rule,
                "unfamiliar_cutoff": None if self.familiarity is None else self.familiarity.cutoff}


def load_rule(kind, models_dir=Paths().models, fallback_threshold=0.8, threshold=None):
    """The model's DecisionRule from models_dir/decisions/, or the fallback threshold without a rule; a given
    `threshold` (--threshold) replaces the rule's, the unfamiliar check stays.

    A rule chosen for another model file (the model retrained since) is a clear error: run dvc repro."""
    folder = Path(models_dir) / "decisions"
    path = folder / f"{kind}.json"
    familiarity = load_familiarity(folder) if folder.is_dir() else None
    if threshold is not None:
        return DecisionRule(threshold, familiarity, None, "--threshold")
    if not path.is_file():
        return DecisionRule(fallback_threshold, familiarity)
    try:
        rule = json.loads(path.read_text())
        threshold, sha = rule["threshold"], rule["model_sha256"]
    except (ValueError, KeyError, TypeError) as err:
        raise outdated(path, f"could not be read ({type(err).__name__}: {err})") from None
    model = Paths.model_in(models_dir, kind)
    if model.is_file() and file_sha256(model) != sha:
        raise outdated(path, f"was chosen for another {model} (the model was trained again since)")
    return DecisionRule(threshold, familiarity, rule)
