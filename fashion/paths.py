"""Where every stage reads and writes: the one place a path of the pipeline is named.

`Paths()` is the repository's layout, the one dvc.yaml declares (tests/test_dvc_deps.py checks that
every `outs` and `metrics` entry of dvc.yaml is a path named here). Stages take a Paths and read
every location from it. A test or a benchmark passes `Paths(tmp_path)` to run the same stages under
another root, and may move one of the folders below (`Paths(tmp_path, prepared=other)`); every file
is named relative to its folder here.
"""

from dataclasses import dataclass
from pathlib import Path

# The folders, relative to the root; each can be moved on its own.
FOLDERS = {"prepared": "data/prepared", "features": "data/features", "resampled": "data/resampled",
           "models": "models", "metrics": "metrics", "plots": "plots", "cache": ".cache"}


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")
    prepared: Path | None = None  # the prepare stage's image store, manifest and summary
    features: Path | None = None  # the extract stage's features, one .npz per split
    resampled: Path | None = None  # the resample stage's training features after SMOTE
    models: Path | None = None  # one .keras file and its .json record per model; the fine-tuned one in a folder
    metrics: Path | None = None  # small files, committed with dvc.lock
    plots: Path | None = None  # per model: training history, test predictions, figures
    cache: Path | None = None  # caches outside DVC: decoded photos, backbone features, photo hashes

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        for name, relative in FOLDERS.items():
            value = getattr(self, name)
            object.__setattr__(self, name, self.root / relative if value is None else Path(value))

    # Data: the generated default and the photo folder's inventory.
    @property
    def synthetic(self):
        return self.root / "data/synthetic"

    @property
    def inventory(self):
        return self.root / "data/inventory.json"

    @property
    def head(self):
        return self.models / "head.keras"

    @property
    def cnn(self):
        return self.models / "cnn.keras"

    @property
    def finetuned(self):
        """The finetune stage's output is a folder: with fine-tuning off (finetune.enabled: false) it holds
        only finetuned.json saying so, and there is no model to load."""
        return self.models / "finetuned"

    def model(self, kind):
        """models/<kind>.keras (kind: head, cnn, finetuned); its record is the .json beside it."""
        return self.model_in(self.models, kind)

    @staticmethod
    def model_in(models_dir, kind):
        folder = Path(models_dir) / "finetuned" if kind == "finetuned" else Path(models_dir)
        return folder / f"{kind}.keras"

    # Metrics.
    @property
    def smote(self):
        return self.metrics / "smote.json"

    @property
    def cv(self):
        return self.metrics / "cv.json"

    @property
    def cv_folds(self):
        return self.metrics / "cv_folds.csv"

    @property
    def cv_predictions(self):
        return self.metrics / "cv_predictions.csv"

    @property
    def cv_oof(self):
        """Every cross-validated model's out-of-fold probabilities (cv_predictions.csv: the best model's alone)."""
        return self.metrics / "cv_oof.csv"

    @property
    def suspects(self):
        return self.metrics / "suspects.csv"

    # The decide stage: each model's decision rule (threshold, novelty cutoff), beside the models.
    @property
    def decisions(self):
        return self.models / "decisions"

    def decision(self, kind):
        return self.decisions / f"{kind}.json"

    @property
    def decisions_metrics(self):
        return self.metrics / "decisions.json"

    @property
    def risk_coverage_png(self):
        return self.plots / "risk_coverage.png"

    @property
    def chosen_thresholds(self):
        """One row per model: the chosen threshold's point on the test split's risk-coverage curve."""
        return self.plots / "chosen_thresholds.csv"

    @property
    def cnn_train(self):
        return self.metrics / "cnn_train.json"

    @property
    def test(self):
        return self.metrics / "test.json"

    @property
    def per_class(self):
        return self.metrics / "per_class.json"

    @property
    def report(self):
        return self.metrics / "report.md"

    def model_metrics(self, kind):
        """metrics/<kind>.json: one model's headline numbers (kind: head, cnn, finetuned, baseline)."""
        return self.metrics / f"{kind}.json"

    # Plots.
    def history(self, kind):
        return self.plots / kind / "history.csv"

    def risk_coverage(self, kind):
        """The test split's risk-coverage curve of one model (evaluate)."""
        return self.plots / kind / "risk_coverage.csv"

    def plot_folder(self, kind):
        return self.plots / kind

    @property
    def suspects_gallery(self):
        return self.plots / "suspects.png"

    # Caches: decoded photos (prepare), backbone features (extract), photo hashes (scan).
    @property
    def decode_cache(self):
        return self.cache / "prepare"

    @property
    def feature_cache(self):
        return self.cache / "features"

    def timings(self, stage):
        """.cache/timings/<stage>.json: how long a stage's run took. Kept out of DVC's outputs, because a
        time differs between two runs that are otherwise identical to the byte."""
        return self.cache / "timings" / f"{stage}.json"

    @property
    def scan_cache(self):
        """The photo hashes of the last scan, reused while a file's size, mtime and inode are unchanged."""
        return self.cache / "scan/hashes.json"
