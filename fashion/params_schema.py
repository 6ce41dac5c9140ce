"""params.yaml's schema: one pydantic model per section, `Params` the whole file.

A key's type says what one value may be (many from fashion/params_types.py, which names the types several
keys share), a `model_validator` what keys must agree on. `fashion.params.load_params` reads the file and
checks it against `Params`; a mistake becomes one line naming the dotted key.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from fashion.names import BLOCKS, ENGINES, LOCATORS, RESIZE_MODES, SOURCES
from fashion.params_types import (
    AT,
    Alpha,
    Backbones,
    BatchSize,
    CacheSize,
    ClassCounts,
    DropRate,
    Epochs,
    Fraction,
    ImageRegion,
    ImageSize,
    ItemPattern,
    LearningRate,
    LocateBox,
    OptionalText,
    PhotoRegion,
    RayAddress,
    Rotation,
    Section,
    Share,
    Shift,
    Smoothing,
    Text,
    Weights,
    Width,
    Widths,
    broken_rule,
)
from fashion.paths import Paths

SYNTHETIC_DIR = str(Paths().synthetic)  # where the synthesize stage writes the generated data set


class Data(Section):
    """data: where the photos are and how each becomes a model input."""

    source: Literal[SOURCES]
    path: Text
    image_size: ImageSize
    resize: Literal[RESIZE_MODES]
    region: PhotoRegion
    locate: Literal[LOCATORS]
    locate_box: LocateBox
    max_pixels: int = Field(ge=1, le=2**40)
    min_side: int = Field(ge=1, le=65535)
    max_aspect: float = Field(ge=1, le=65535)
    cache: bool
    cache_max_gb: CacheSize
    exclude: OptionalText
    exclude_test: bool
    confirmed: OptionalText = None

    @model_validator(mode="after")
    def _synthetic_lives_in_its_folder(self):
        """The generated data set is written to SYNTHETIC_DIR; another path means the user's photos."""
        if self.source == "synthetic" and Path(self.path) != Path(SYNTHETIC_DIR):
            raise broken_rule(
                f"'{AT}.source' is synthetic but '{AT}.path' is {self.path!r}; the generated data set lives in "
                f"{SYNTHETIC_DIR}. To use your own photos set {AT}.source=folder "
                f"(dvc exp run -S {AT}.source=folder -S {AT}.path=/your/photos)")
        return self


class Split(Section):
    """split: the shares of each class held out for validation and test, and the grouping by item."""

    validation: Share
    test: Share
    group: ItemPattern

    @model_validator(mode="after")
    def _some_left_for_training(self):
        """Validation and test together leave some of each class for training."""
        if self.validation + self.test >= 1:
            raise broken_rule(
                f"'{AT}.validation' + '{AT}.test' = {self.validation + self.test:g}; they must add up to less "
                "than 1 so that some images are left for training")
        return self


class Synthetic(Section):
    """synthetic: the generated default data set."""

    image_size: int = Field(ge=32, le=1024)
    counts: ClassCounts


class Ray(Section):
    """features.ray: the Ray engine's cluster and actors."""

    address: RayAddress
    workers: int = Field(ge=1, le=4096)
    num_gpus: float = Field(ge=0, le=64)


class Features(Section):
    """features: the frozen backbone run once over every image."""

    weights: Weights
    alpha: Alpha
    precision: Literal["float32", "bfloat16"]
    mirror: bool
    batch_size: int = Field(ge=1, le=4096)
    cache: bool
    cache_max_gb: CacheSize
    engine: Literal[ENGINES]
    ray: Ray


class Smote(Section):
    """smote: oversampling of the training features."""

    enabled: bool
    k_neighbors: int = Field(ge=1, le=100)


# The trained models' sections (head, cnn, finetune) share epochs, patience, learning_rate, batch_size and
# calibrate, each typed once (fashion/params_types.py). No base class holds them: pydantic would put its keys
# first, and the message for an unknown or missing key lists a section's keys in the order written here.

class Head(Section):
    """head: the classifier on the cached features."""

    units: Width
    dropout: DropRate
    input_dropout: DropRate
    l2: float = Field(ge=0, le=10)
    epochs: Epochs
    patience: Epochs
    learning_rate: LearningRate
    batch_size: BatchSize
    calibrate: bool


class CnnAugment(Section):
    """cnn.augment: every augmentation fashion/data/pixel_batches.py can add (0 or false: off)."""

    flip: bool
    rotation: Rotation
    zoom: Shift
    shift: Shift
    brightness: Fraction
    contrast: Fraction
    hue: Fraction
    grayscale: Fraction
    channel_shuffle: bool
    invert: Fraction


class FinetuneAugment(Section):
    """finetune.augment: cnn.augment's keys that keep ImageNet colours, which the fine-tuned backbone expects."""

    flip: bool
    rotation: Rotation
    zoom: Shift
    brightness: Fraction
    contrast: Fraction


class Cnn(Section):
    """cnn: the custom network trained from scratch."""

    image_size: ImageSize
    filters: Widths = Field(min_length=1)
    convolutions: int = Field(ge=1, le=8)
    dense_units: Widths
    dropout: DropRate
    batch_norm: bool
    region: ImageRegion
    standardize: bool
    pooling: Literal["flatten", "global_average"]
    epochs: Epochs
    patience: Epochs
    reduce_lr_patience: int = Field(ge=0, le=10_000)
    learning_rate: LearningRate
    schedule: Literal["constant", "cosine"]
    weight_decay: Fraction
    label_smoothing: Smoothing
    batch_size: BatchSize
    class_weight: bool
    calibrate: bool
    augment: CnnAugment

    @model_validator(mode="after")
    def _fits_and_one_schedule(self):
        """Each block halves the image, so it must be big enough; the rate follows one schedule."""
        if self.image_size < 2 ** len(self.filters):
            raise broken_rule(
                f"'{AT}.image_size' {self.image_size} is too small for {len(self.filters)} convolution blocks (each "
                f"halves the image); use {AT}.image_size >= {2 ** len(self.filters)} or fewer entries in "
                f"{AT}.filters")
        if self.schedule == "cosine" and self.reduce_lr_patience:
            raise broken_rule(
                f"'{AT}.reduce_lr_patience' is {self.reduce_lr_patience} but '{AT}.schedule' is cosine; the learning "
                f"rate follows one or the other: set {AT}.reduce_lr_patience=0 or {AT}.schedule=constant")
        return self


class Finetune(Section):
    """finetune: the backbone's top blocks trained with the head, from pixels."""

    enabled: bool
    unfreeze: int = Field(ge=0, le=max(BLOCKS.values()))
    learning_rate: LearningRate
    warmup_epochs: int = Field(ge=0, le=10_000)
    epochs: Epochs
    patience: Epochs
    batch_size: BatchSize
    weight_decay: Fraction
    label_smoothing: Smoothing
    class_weight: bool
    calibrate: bool
    augment: FinetuneAugment

    @model_validator(mode="after")
    def _warms_up_then_decays(self):
        """The learning rate warms up for fewer epochs than there are, then decays."""
        if self.enabled and self.warmup_epochs >= self.epochs:
            raise broken_rule(
                f"'{AT}.warmup_epochs' ({self.warmup_epochs}) must be less than '{AT}.epochs' ({self.epochs}): the "
                "learning rate warms up, then decays")
        return self


class Unfamiliar(Section):
    """evaluate.unfamiliar: the novelty score in the backbone's feature space and its cutoff (stage decide)."""

    quantile: float = Field(gt=0.5, le=1)
    neighbours: int = Field(ge=1, le=1000)
    reference: int = Field(ge=10, le=1_000_000)


class Evaluate(Section):
    """evaluate: scoring both models on the test split; the decide stage's target and novelty settings."""

    confidence_threshold: Fraction
    target_accuracy: float = Field(gt=0, le=1)
    unfamiliar: Unfamiliar
    calibration_bins: int = Field(ge=2, le=1000)
    mistakes: int = Field(ge=0, le=100)
    bootstrap: int = Field(ge=0, le=100_000)


class Crossval(Section):
    """crossval: the head and the baseline on folds of train + validation."""

    folds: int = Field(ge=2, le=50)
    repeats: int = Field(ge=1, le=100)
    validation: Share


class Params(Section):
    """The whole of params.yaml."""

    seed: int = Field(ge=0, le=2**32 - 1)
    model: Backbones
    data: Data
    split: Split
    synthetic: Synthetic
    features: Features
    smote: Smote
    head: Head
    cnn: Cnn
    finetune: Finetune
    evaluate: Evaluate
    crossval: Crossval

    @model_validator(mode="after")
    def _backbones_agree(self):
        """Fine-tuning trains one backbone, within its blocks; a weights mapping names every backbone."""
        names = self.model.split("+")
        if self.finetune.enabled and len(names) > 1:
            raise broken_rule(
                f"'finetune.enabled' is true but 'model' is {self.model!r}, several backbones side by side; "
                "fine-tuning trains one: set model to one of them, or finetune.enabled=false")
        if self.finetune.enabled and self.finetune.unfreeze > BLOCKS[names[0]]:
            blocks = BLOCKS[names[0]]
            raise broken_rule(
                f"'finetune.unfreeze' is {self.finetune.unfreeze}, but {names[0]} has {blocks} blocks; use 0 (the "
                f"backbone frozen, only the head trains) .. {blocks} (every block)")
        weights = self.features.weights
        missing = [name for name in names if name not in weights] if isinstance(weights, dict) else []
        if missing:
            raise broken_rule(
                f"'features.weights' has no entry for {', '.join(missing)} (model is {self.model!r}); add one per "
                f"backbone, e.g. features.weights.{missing[0]}: imagenet")
        return self
