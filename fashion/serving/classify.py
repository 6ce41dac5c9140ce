"""The trained models as classifiers: uint8 images in, class probabilities out.

The evaluate stage and the prediction command both go through here, so a photo is
classified the same way in both: the image store's uint8 pixels (or a photo decoded and
preprocessed by `fashion.data.images`, exactly as prepare does) go to the CNN, which resizes and
rescales inside the model, or through the same frozen backbone and `preprocess_input`
as the extract stage to the head. A model is rebuilt from `models/<kind>.keras` and the two
recipes in `models/<kind>.json` alone (`fashion.data.recipes`). `classify` turns photo files into
the result records that the prediction command prints and the server (`stages.serve`) returns.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fashion.data.dataset import prefetched
from fashion.data.images import ImageError, ImageLimits, load_located
from fashion.data.recipes import BackboneRecipe, Preprocessing
from fashion.errors import PipelineError, missing, outdated
from fashion.models.training import load_model_info
from fashion.params import PARAMS_FILE, load_params
from fashion.paths import Paths
from fashion.serving.decision import DecisionRule

KINDS = ("cnn", "head", "finetuned")

LOW_CONFIDENCE = "low confidence: the photo may show several garments or an unusual neckline"
NOT_LOCATED = "no neckline located (no face or person found): the model saw data.region instead; treat with care"
BACK_VIEW = "back view: the photo shows the wearer's back, where no neckline can be seen; treat with care"
DEFAULT_THRESHOLD = 0.8


class Classifier:
    """One trained model with what it needs to classify: its classes and how its inputs are made."""

    def __init__(self, kind, model, info, preprocessing, extractor=None):
        self.kind, self.model, self.info, self.extractor = kind, model, info, extractor
        self.classes = list(info["classes"])
        self.preprocessing = preprocessing
        self.image_size = preprocessing.image_size

    @property
    def random_weights(self):
        """True for a head or fine-tuned model whose backbone had random weights (features.weights none, or
        auto with no pretrained weights to be had): its predictions say nothing."""
        from fashion.features.frozen_backbone import is_random

        recipe = self.info.get(BackboneRecipe.RECORD_KEY)
        return self.kind != "cnn" and isinstance(recipe, dict) and is_random(recipe.get("weights"))

    def random_weights_warning(self):
        """The warning the prediction command and the server give at start for such a model, or None."""
        if not self.random_weights:
            return None
        from fashion.features.frozen_backbone import RANDOM_WEIGHTS_ADVICE

        return (f"the {self.title} was trained on features of a backbone with RANDOM weights "
                f"(weights {self.info[BackboneRecipe.RECORD_KEY]['weights']}): {RANDOM_WEIGHTS_ADVICE}")

    @property
    def trained_on(self):
        """One line: the data, backbone, weights and params the model was trained on (fashion.models.provenance)."""
        from fashion.models.provenance import RECORD_KEY, describe

        return describe(self.info.get(RECORD_KEY)) or "trained on: not recorded (a model from an older version)"

    @property
    def title(self):
        """How reports name the model: the custom CNN, or the head with its backbone."""
        if self.kind == "cnn":
            return "custom CNN"
        backbone = self.info[BackboneRecipe.RECORD_KEY]["model"]
        return f"{backbone} head" if self.kind == "head" else f"{backbone} fine-tuned"

    def read(self, path, limits=ImageLimits()):
        """A photo as this model's training images were made: decoded, cut to the located box (or the region),
        resized; with where it was cut (a fashion.data.locate.Location)."""
        return load_located(path, self.preprocessing, limits)

    def probabilities(self, images):
        """(n, classes) float32 probabilities for a batch of (n, size, size, 3) uint8 images."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(f"expected (n, {self.image_size}, {self.image_size}, 3) images, got {images.shape}")
        if self.kind == "head":
            return self.from_features(self.extractor(images))
        # The CNN and the fine-tuned model take pixels. predict_on_batch runs the model with training=False:
        # augmentation stays off.
        return np.asarray(self.model.predict_on_batch(images.astype(np.float32)), dtype=np.float32)

    def from_features(self, features):
        """Head only: probabilities from backbone features the extract stage already computed."""
        if self.kind != "head":
            raise ValueError("only the head takes backbone features")
        return np.asarray(self.model.predict_on_batch(np.asarray(features, dtype=np.float32)), dtype=np.float32)


def model_path(kind, models_dir=Paths().models):
    """models_dir/<kind>.keras; the fine-tuned model lives in its own folder, models_dir/finetuned/."""
    return Paths.model_in(models_dir, kind)


def is_enabled(kind, models_dir=Paths().models):
    """False when the stage that makes this kind of model was turned off (the fine-tuned one only)."""
    info_path = model_path(kind, models_dir).with_suffix(".json")
    if kind != "finetuned" or not info_path.is_file():
        return True
    try:
        return json.loads(info_path.read_text()).get("enabled", True) is not False
    except ValueError:
        return True  # unreadable: loading it says so


def load_classifier(kind, models_dir=Paths().models, with_backbone=True):
    """Load models/<kind>.keras and its .json; for the head, rebuild the backbone that made its features.

    with_backbone=False skips the backbone (the evaluate stage feeds the head cached features).
    """
    if kind not in KINDS:
        raise PipelineError(f"unknown model kind {kind!r}; choose one of: {', '.join(KINDS)}")
    path = model_path(kind, models_dir)
    info_path = path.with_suffix(".json")
    if not is_enabled(kind, models_dir):
        raise PipelineError("there is no fine-tuned model: fine-tuning is off (finetune.enabled: false). Turn it on "
                            "with `dvc exp run -S finetune.enabled=true`, or use --model cnn or head")
    if not path.is_file() or not info_path.is_file():
        raise missing(path, f"no trained {kind} model")
    import keras

    from fashion.models import cnn_layers  # noqa: F401  (registers the CNN's own layers, so its saved model loads)

    if kind == "finetuned":
        import fashion.models.finetune_model  # noqa: F401  (registers the model's preprocess_input layer for loading)
    info = load_model_info(path)
    preprocessing = Preprocessing.from_artifact(info, info_path)
    recipe = BackboneRecipe.from_artifact(info, info_path) if kind == "head" else None
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # a truncated or foreign file: Keras raises several kinds
        raise outdated(path, f"could not be loaded ({type(err).__name__}: {err})") from None
    extractor = None
    if recipe is not None and with_backbone:
        from fashion.features.frozen_backbone import build_extractor

        extractor = build_extractor(recipe, preprocessing.image_size)
    return Classifier(kind, model, info, preprocessing, extractor)


def best_model(metrics_path=Paths().test):
    """The model predict, tag and serve answer with by default, or None: of the served kinds that cross-validation
    covers (the head, and the fine-tuned model when it is on), the one with the highest cross-validated balanced
    accuracy (then macro-F1), read from cv.json beside metrics_path (metrics/cv.json, the crossval stage's).

    Never by the test split: it scores the chosen model, it does not choose it. The CNN, which the crossval stage
    does not cover, answers with --model cnn."""
    path = Path(metrics_path).with_name(Paths().cv.name)
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
        scored = [kind for kind in KINDS if isinstance(results.get(kind), dict)]
        return max(scored, key=lambda kind: (results[kind]["balanced_accuracy_mean"], results[kind]["macro_f1_mean"]),
                   default=None)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def last_evaluation(kind, metrics_path=Paths().test):
    """The model's section of the last evaluation (metrics/test.json), or None without one."""
    try:
        return json.loads(Path(metrics_path).read_text())[kind]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def settings_from_params():
    """(confidence threshold, ImageLimits) from params.yaml, or the defaults where there is none."""
    if not Path(PARAMS_FILE).is_file():
        return DEFAULT_THRESHOLD, ImageLimits()
    params = load_params()
    return params.evaluate.confidence_threshold, ImageLimits.from_params(params)


# --- photo files to result records (the prediction command and the server) ------------------

def classify(classifier, entries, threshold, batch_size=32, limits=ImageLimits(), workers=None, pool=None):
    """One result dict per (shown path, file or None, error or None) entry, in order: path, label,
    probability, top3, low_confidence, decision (auto, review or unfamiliar: fashion/serving/decision.py),
    novelty (how far the photo's backbone features are from the training photos'; None without the check),
    located (whether a locator placed the box the model saw; None when the model's recipe has locate none),
    locator (face, pose, closeup or none; None with locate none), view (front, back, or None when unknown),
    box (that box, as fractions of the photo), error, random_weights (the model's backbone had random weights).

    threshold: a DecisionRule, or a number (a rule with that threshold and no unfamiliar check).

    Decoding runs on a thread pool, a batch ahead of the model (`dataset.prefetched`); memory holds
    two batches at most. A long-running caller passes its own `pool`: OpenCV keeps a little memory
    for every thread that ever resized an image, so a new pool per call would add up.
    """
    if pool is None:
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as own_pool:
            return classify(classifier, entries, threshold, batch_size, limits, pool=own_pool)
    rule = threshold if isinstance(threshold, DecisionRule) else DecisionRule(threshold)

    def decode_batch(batch):
        return list(pool.map(lambda e: _decode(e, classifier, limits), batch))

    results = []
    batches = [entries[i:i + batch_size] for i in range(0, len(entries), batch_size)]
    for decoded, batch in zip(prefetched(decode_batch(batch) for batch in batches), batches):
        results += _classify_batch(classifier, batch, decoded, rule)
    return results


def _decode(entry, classifier, limits):
    """(image, location, error) of one entry."""
    _, file, error = entry
    if error:
        return None, None, error
    try:
        return *classifier.read(file, limits), None
    except ImageError as err:
        return None, None, str(err)


def probabilities_and_novelty(classifier, images, familiarity=None):
    """(probabilities, novelty or None) of a batch; a head on the same backbone computes its features once."""
    if familiarity is None:
        return classifier.probabilities(images), None
    features = familiarity.features(images, classifier)
    probabilities = (classifier.from_features(features) if familiarity.shares_backbone(classifier)
                     else classifier.probabilities(images))
    return probabilities, familiarity.novelty(features)


def _classify_batch(classifier, batch, decoded, rule):
    images = [image for image, _, _ in decoded if image is not None]
    probabilities, novelty = (probabilities_and_novelty(classifier, np.stack(images), rule.familiarity) if images
                              else ([], None))
    probabilities, novelty = iter(probabilities), iter([] if novelty is None else novelty)
    out = []
    for (shown, _, _), (image, location, error) in zip(batch, decoded):
        if image is None:
            out.append({"path": shown, "label": None, "probability": None, "top3": [],
                        "low_confidence": None, "decision": None, "novelty": None, "located": None, "locator": None,
                        "view": None, "box": None, "error": error, "random_weights": classifier.random_weights})
            continue
        p = next(probabilities).astype(np.float64)
        far = None if rule.familiarity is None else round(float(next(novelty)), 6)
        order = np.argsort(-p, kind="stable")[:3]
        top = float(p[order[0]])
        out.append({"path": shown, "label": classifier.classes[order[0]], "probability": round(top, 6),
                    "top3": [[classifier.classes[k], round(float(p[k]), 6)] for k in order],
                    "low_confidence": bool(rule.threshold is None or top < rule.threshold),
                    "decision": rule.decision(top, far), "novelty": far,
                    **location.to_record(), "error": None, "random_weights": classifier.random_weights})
    return out
