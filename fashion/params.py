"""Read and validate params.yaml: the one place that knows what a valid configuration is.

Every stage calls `load_params()`, which checks the whole file, so a typo anywhere is
reported before any work starts, with the key's full name and the allowed values.

Each section of the file is a pydantic model below, `Params` the whole file: a key's type and
`Field` say what one value may be, a `model_validator` what keys must agree on. `validate()`
turns pydantic's errors into one line per problem (`_report`), each naming the dotted key.
`params.model_dump()` (or `params.cnn.model_dump()`) gives the plain dicts of JSON and YAML.
"""

import difflib
import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from fashion.errors import PipelineError
from fashion.names import BACKBONES, BLOCKS, ENGINES, LOCATORS, PARAMS_FILE, RESIZE_MODES, SOURCES
from fashion.paths import Paths

SYNTHETIC_DIR = str(Paths().synthetic)  # where the synthesize stage writes the generated data set


# --- errors: what a value's or a rule's check raises; `_report` turns them into lines -----------------

AT = "{at}"  # in a rule's message: the dotted key of the section the rule belongs to


def _bad_value(problem, sub=""):
    """The error of one value, reported as `'<key><sub>' <problem>` (sub: a key inside the value)."""
    return PydanticCustomError("params_value", "{problem}", {"problem": problem, "sub": sub})


def _broken_rule(message):
    """The error of a rule between keys of one section; the message names the section's keys as AT.key."""
    return PydanticCustomError("params_rule", "{message}", {"message": message})


# --- values that no built-in type checks ------------------------------------------------------------

def _text(value):
    """A non-empty string (not only spaces)."""
    if not isinstance(value, str) or not value.strip():
        raise _bad_value(f"must be a non-empty string, got {value!r}")
    return value


def _empty_is_none(value):
    """'' means none, as null does (data.exclude)."""
    return None if value == "" else value


def _backbones(value):
    """One backbone name, or several joined by '+' (their features side by side), each once."""
    names = value.split("+") if isinstance(value, str) else [value]
    unknown = [name for name in names if not isinstance(name, str) or name not in BACKBONES]
    if unknown or len(set(names)) != len(names):
        raise _bad_value(f"is {value!r}; allowed values: {', '.join(BACKBONES)}, or several of them joined by '+' "
                         "(e.g. mobilenet+mobilenet_v2: the head gets both backbones' features side by side)")
    return value


def _weights(value):
    """auto | imagenet | none | a file path, or a mapping of backbone name to one of those."""
    if not isinstance(value, dict):
        return _text(value)
    if not value:
        raise _bad_value("is an empty mapping; give a value per backbone, e.g. {mobilenet: path/to/file.h5}")
    for name, each in value.items():
        if name not in BACKBONES:
            raise _bad_value(f"names no backbone; allowed: {', '.join(BACKBONES)}", sub=f".{name}")
        if not isinstance(each, str) or not each.strip():
            raise _bad_value(f"must be a non-empty string, got {each!r}", sub=f".{name}")
    return value


def _one_group(value):
    """null, or a regular expression whose first group names the item a file belongs to."""
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as err:
        raise _bad_value(f"is not a valid regular expression ({err}): {value!r}") from None
    if compiled.groups < 1:
        raise _bad_value(f"has no group in {value!r}; put the part of the file name that names the item in "
                         r"parentheses, e.g. '-(\d+)-\d+\.[a-z]+$' for files named <...>-<item>-<view>.jpg")
    return value


def _ray_address(value):
    """Where the Ray engine finds its cluster: '' or null (start one on this machine), 'auto' (the one this
    machine belongs to) or host:port of its head node."""
    if value is None:
        value = ""
    valid = isinstance(value, str) and (
        value in ("", "auto") or re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5}", value))
    if not valid:
        raise _bad_value(f"is {value!r}; allowed values: '' (start a Ray cluster on this machine), auto (the cluster "
                         "this machine joined with `ray start`), or host:port of a cluster's head node, e.g. "
                         "10.0.0.5:6379")
    return value


def _class_counts(value):
    """A non-empty mapping of class name to image count; names read as strings (a class named 1 is '1')."""
    if not isinstance(value, dict) or not value:
        raise _bad_value(f"must be a mapping of class name to image count, got {value!r}")
    return {str(name): count for name, count in value.items()}


def _as_written(value, handler):
    """Check the value, but keep it as written (alpha 1 stays 1): it goes into records and cache fingerprints."""
    handler(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[Text | None, BeforeValidator(_empty_is_none)]  # null or '' (none), or a string
Widths = list[Annotated[int, Field(ge=1, le=65536)]]  # layer widths; cnn.filters needs at least one


# --- the models -----------------------------------------------------------------------------------

class Section(BaseModel):
    """A mapping of params.yaml: every key required, no other key, no conversions (a boolean is not a
    number, '5' is not 5, a tuple not a list), no infinite numbers; a float key takes 1 and gives 1.0.
    A section given as a model instead of a dict is checked again all the same."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, revalidate_instances="always")


class Region(Section):
    """A box as fractions of an image's height and width, each measured from the top and left edges."""

    WHAT: ClassVar[str] = "image"

    top: float = Field(ge=0, le=1)
    bottom: float = Field(ge=0, le=1)
    left: float = Field(ge=0, le=1)
    right: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _not_empty(self):
        """The box must have a height and a width."""
        for start, end in (("top", "bottom"), ("left", "right")):
            low, high = getattr(self, start), getattr(self, end)
            if high <= low:
                raise _broken_rule(
                    f"'{AT}.{end}' ({high:g}) must be greater than '{AT}.{start}' ({low:g}); they are "
                    f"fractions of the {self.WHAT}'s {'height' if start == 'top' else 'width'} measured from its "
                    f"{start} edge (the whole {self.WHAT}: {start} 0, {end} 1)")
        return self


class PhotoRegion(Region):
    """data.region: the part of each photo the models see, cut out before resizing."""

    WHAT: ClassVar[str] = "photo"


class ImageRegion(Region):
    """cnn.region: the part of each prepared image the network sees, cut out inside the model."""

    WHAT: ClassVar[str] = "prepared image"


class LocateBox(Section):
    """data.locate_box: the box under the face, in face heights below its top and face widths either side."""

    top: float = Field(ge=0, le=20)
    bottom: float = Field(ge=0, le=20)
    half_width: float = Field(gt=0, le=20)

    @model_validator(mode="after")
    def _below_the_face(self):
        """The box has a height and ends below the chin, where the neckline is."""
        if self.bottom <= self.top:
            raise _broken_rule(
                f"'{AT}.bottom' ({self.bottom:g}) must be greater than '{AT}.top' ({self.top:g}); both are face "
                "heights below the top of the face (the default box: top 0.8, bottom 2.6)")
        if self.bottom <= 1:
            raise _broken_rule(
                f"'{AT}.bottom' is {self.bottom:g}, so the box ends inside or above the face (1 is the chin); the "
                "neckline is below it: use a bottom above 1 (the default box: top 0.8, bottom 2.6)")
        return self


class Data(Section):
    """data: where the photos are and how each becomes a model input."""

    source: Literal[SOURCES]
    path: Text
    image_size: int = Field(ge=16, le=1024)
    resize: Literal[RESIZE_MODES]
    region: PhotoRegion
    locate: Literal[LOCATORS]
    locate_box: LocateBox
    max_pixels: int = Field(ge=1, le=2**40)
    min_side: int = Field(ge=1, le=65535)
    max_aspect: float = Field(ge=1, le=65535)
    cache: bool
    cache_max_gb: float = Field(gt=0, le=100_000)
    exclude: OptionalText
    exclude_test: bool
    confirmed: OptionalText = None

    @model_validator(mode="after")
    def _synthetic_lives_in_its_folder(self):
        """The generated data set is written to SYNTHETIC_DIR; another path means the user's photos."""
        if self.source == "synthetic" and Path(self.path) != Path(SYNTHETIC_DIR):
            raise _broken_rule(
                f"'{AT}.source' is synthetic but '{AT}.path' is {self.path!r}; the generated data set lives in "
                f"{SYNTHETIC_DIR}. To use your own photos set {AT}.source=folder "
                f"(dvc exp run -S {AT}.source=folder -S {AT}.path=/your/photos)")
        return self


class Split(Section):
    """split: the shares of each class held out for validation and test, and the grouping by item."""

    validation: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)
    group: Annotated[Text | None, AfterValidator(_one_group)]

    @model_validator(mode="after")
    def _some_left_for_training(self):
        """Validation and test together leave some of each class for training."""
        if self.validation + self.test >= 1:
            raise _broken_rule(
                f"'{AT}.validation' + '{AT}.test' = {self.validation + self.test:g}; they must add up to less "
                "than 1 so that some images are left for training")
        return self


class Synthetic(Section):
    """synthetic: the generated default data set."""

    image_size: int = Field(ge=32, le=1024)
    counts: Annotated[dict[str, Annotated[int, Field(ge=1, le=100_000)]], BeforeValidator(_class_counts)]


class Ray(Section):
    """features.ray: the Ray engine's cluster and actors."""

    address: Annotated[str, BeforeValidator(_ray_address)]
    workers: int = Field(ge=1, le=4096)
    num_gpus: float = Field(ge=0, le=64)


class Features(Section):
    """features: the frozen backbone run once over every image."""

    weights: Annotated[str | dict[str, str], BeforeValidator(_weights)]
    alpha: Annotated[Literal[0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4], WrapValidator(_as_written)]
    precision: Literal["float32", "bfloat16"]
    mirror: bool
    batch_size: int = Field(ge=1, le=4096)
    cache: bool
    cache_max_gb: float = Field(gt=0, le=100_000)
    engine: Literal[ENGINES]
    ray: Ray


class Smote(Section):
    """smote: oversampling of the training features."""

    enabled: bool
    k_neighbors: int = Field(ge=1, le=100)


class Head(Section):
    """head: the classifier on the cached features."""

    units: int = Field(ge=1, le=65536)
    dropout: float = Field(ge=0, lt=1)
    input_dropout: float = Field(ge=0, lt=1)
    l2: float = Field(ge=0, le=10)
    epochs: int = Field(ge=1, le=10_000)
    patience: int = Field(ge=1, le=10_000)
    learning_rate: float = Field(gt=0, le=1)
    batch_size: int = Field(ge=1, le=65536)
    calibrate: bool


class CnnAugment(Section):
    """cnn.augment: every augmentation fashion/data/image_data.py can add (0 or false: off)."""

    flip: bool
    rotation: float = Field(ge=0, le=0.5)
    zoom: float = Field(ge=0, le=0.9)
    shift: float = Field(ge=0, le=0.9)
    brightness: float = Field(ge=0, le=1)
    contrast: float = Field(ge=0, le=1)
    hue: float = Field(ge=0, le=1)
    grayscale: float = Field(ge=0, le=1)
    channel_shuffle: bool
    invert: float = Field(ge=0, le=1)


class FinetuneAugment(Section):
    """finetune.augment: cnn.augment's keys that keep ImageNet colours, which the fine-tuned backbone expects."""

    flip: bool
    rotation: float = Field(ge=0, le=0.5)
    zoom: float = Field(ge=0, le=0.9)
    brightness: float = Field(ge=0, le=1)
    contrast: float = Field(ge=0, le=1)


class Cnn(Section):
    """cnn: the custom network trained from scratch."""

    image_size: int = Field(ge=16, le=1024)
    filters: Widths = Field(min_length=1)
    convolutions: int = Field(ge=1, le=8)
    dense_units: Widths
    dropout: float = Field(ge=0, lt=1)
    batch_norm: bool
    region: ImageRegion
    standardize: bool
    pooling: Literal["flatten", "global_average"]
    epochs: int = Field(ge=1, le=10_000)
    patience: int = Field(ge=1, le=10_000)
    reduce_lr_patience: int = Field(ge=0, le=10_000)
    learning_rate: float = Field(gt=0, le=1)
    schedule: Literal["constant", "cosine"]
    weight_decay: float = Field(ge=0, le=1)
    label_smoothing: float = Field(ge=0, le=0.5)
    batch_size: int = Field(ge=1, le=65536)
    class_weight: bool
    calibrate: bool
    augment: CnnAugment

    @model_validator(mode="after")
    def _fits_and_one_schedule(self):
        """Each block halves the image, so it must be big enough; the rate follows one schedule."""
        if self.image_size < 2 ** len(self.filters):
            raise _broken_rule(
                f"'{AT}.image_size' {self.image_size} is too small for {len(self.filters)} convolution blocks (each "
                f"halves the image); use {AT}.image_size >= {2 ** len(self.filters)} or fewer entries in "
                f"{AT}.filters")
        if self.schedule == "cosine" and self.reduce_lr_patience:
            raise _broken_rule(
                f"'{AT}.reduce_lr_patience' is {self.reduce_lr_patience} but '{AT}.schedule' is cosine; the learning "
                f"rate follows one or the other: set {AT}.reduce_lr_patience=0 or {AT}.schedule=constant")
        return self


class Finetune(Section):
    """finetune: the backbone's top blocks trained with the head, from pixels."""

    enabled: bool
    unfreeze: int = Field(ge=0, le=max(BLOCKS.values()))
    learning_rate: float = Field(gt=0, le=1)
    warmup_epochs: int = Field(ge=0, le=10_000)
    epochs: int = Field(ge=1, le=10_000)
    patience: int = Field(ge=1, le=10_000)
    batch_size: int = Field(ge=1, le=65536)
    weight_decay: float = Field(ge=0, le=1)
    label_smoothing: float = Field(ge=0, le=0.5)
    class_weight: bool
    calibrate: bool
    augment: FinetuneAugment

    @model_validator(mode="after")
    def _warms_up_then_decays(self):
        """The learning rate warms up for fewer epochs than there are, then decays."""
        if self.enabled and self.warmup_epochs >= self.epochs:
            raise _broken_rule(
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

    confidence_threshold: float = Field(ge=0, le=1)
    target_accuracy: float = Field(gt=0, le=1)
    unfamiliar: Unfamiliar
    calibration_bins: int = Field(ge=2, le=1000)
    mistakes: int = Field(ge=0, le=100)
    bootstrap: int = Field(ge=0, le=100_000)


class Crossval(Section):
    """crossval: the head and the baseline on folds of train + validation."""

    folds: int = Field(ge=2, le=50)
    repeats: int = Field(ge=1, le=100)
    validation: float = Field(gt=0, lt=1)


class Params(Section):
    """The whole of params.yaml."""

    seed: int = Field(ge=0, le=2**32 - 1)
    model: Annotated[str, BeforeValidator(_backbones)]
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
            raise _broken_rule(
                f"'finetune.enabled' is true but 'model' is {self.model!r}, several backbones side by side; "
                "fine-tuning trains one: set model to one of them, or finetune.enabled=false")
        if self.finetune.enabled and self.finetune.unfreeze > BLOCKS[names[0]]:
            blocks = BLOCKS[names[0]]
            raise _broken_rule(
                f"'finetune.unfreeze' is {self.finetune.unfreeze}, but {names[0]} has {blocks} blocks; use 0 (the "
                f"backbone frozen, only the head trains) .. {blocks} (every block)")
        weights = self.features.weights
        missing = [name for name in names if name not in weights] if isinstance(weights, dict) else []
        if missing:
            raise _broken_rule(
                f"'features.weights' has no entry for {', '.join(missing)} (model is {self.model!r}); add one per "
                f"backbone, e.g. features.weights.{missing[0]}: imagenet")
        return self


# --- reading and reporting --------------------------------------------------------------------------

def validate(params):
    """Check every key of params.yaml and the rules between keys; return them as a Params."""
    try:
        return Params.model_validate(params)
    except ValidationError as err:
        raise PipelineError("\n".join(_report(err.errors()))) from None


class ParamsLoader(yaml.SafeLoader):
    """YAML as DVC writes params.yaml: `dvc exp run -S finetune.learning_rate=3e-5` stores 3e-05, a float in
    YAML 1.2 (DVC's ruamel.yaml) but text in YAML 1.1 (PyYAML), which wants a decimal point. This loader
    reads such exponents as numbers too."""


ParamsLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
                                   list("-+0123456789"))


def read_params_file(path):
    """The params file's YAML as plain data, read as DVC writes it (ParamsLoader)."""
    return yaml.load(Path(path).read_text(), Loader=ParamsLoader)  # noqa: S506 (a SafeLoader)


def load_params(path=PARAMS_FILE):
    """Read and validate params.yaml; raise PipelineError with a readable message when it is wrong."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path} not found; run the stage from the repository root, where params.yaml lives")
    try:
        params = read_params_file(path)
    except yaml.YAMLError as err:
        raise PipelineError(f"{path} is not valid YAML: {err}") from None
    return validate(params)


def _report(errors):
    """One line per problem in pydantic's errors. A key that is missing only because an unknown key
    next to it is its misspelling gets no line of its own: the unknown key's line suggests it."""
    lines, suggested = [], set()
    for error in errors:
        if error["type"] in ("extra_forbidden", "invalid_key"):
            line, suggestion = _unknown_key(error["loc"])
            lines.append(line)
            suggested.add(suggestion)
    for error in errors:
        if error["type"] == "missing" and _dotted(error["loc"]) not in suggested:
            lines.append(f"{PARAMS_FILE}: '{_dotted(error['loc'])}' is missing; add it (see docs/pipeline.md for its "
                         "meaning)")
        elif error["type"] not in ("extra_forbidden", "invalid_key", "missing"):
            lines.append(f"{PARAMS_FILE}: {_problem(error)}")
    return lines


def _unknown_key(loc):
    """(the line for an unknown key at loc, the dotted key it suggests instead or None)."""
    *section, key = loc
    prefix = "".join(f"{part}." for part in section)
    allowed = list(_type_at(section)[0].model_fields)
    suggestion = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean '{prefix}{suggestion[0]}'?)" if suggestion else ""
    line = (f"{PARAMS_FILE}: unknown key '{prefix}{key}'{hint}; allowed keys here: "
            f"{', '.join(prefix + name for name in allowed)}")
    return line, prefix + suggestion[0] if suggestion else None


def _problem(error):
    """The text of one error after 'params.yaml: ', worded as each rule words it."""
    kind, key, value, ctx = error["type"], _dotted(error["loc"]), error["input"], error.get("ctx", {})
    if kind == "params_rule":
        return ctx["message"].replace(AT, key)
    if kind == "params_value":
        return f"'{key}{ctx['sub']}' {ctx['problem']}"
    if kind == "model_type":
        where = f"'{key}'" if key else "the file"
        return f"{where} must be a mapping of keys to values, got {value!r}"
    if kind == "int_type":
        return f"'{key}' must be a whole number, got {value!r}"
    if kind in ("float_type", "finite_number"):
        return f"'{key}' must be a number, got {value!r}"
    if kind == "bool_type":
        return f"'{key}' must be true or false, got {value!r}"
    if kind == "literal_error":
        return f"'{key}' is {value!r}; allowed values: {', '.join(map(str, get_args(_type_at(error['loc'])[0])))}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"'{key}' is {value}; it must be {_range_text(_type_at(error['loc'])[1])}"
    if kind in ("list_type", "too_short"):
        none = "" if any(getattr(c, "min_length", 0) for c in _type_at(error['loc'])[1]) else " (or [] for none)"
        return f"'{key}' must be a list of whole numbers, e.g. [32, 64]{none}, got {value!r}"
    return f"'{key}' {error['msg'][:1].lower()}{error['msg'][1:]}, got {value!r}"


def _dotted(loc):
    """('cnn', 'dense_units', 1) -> 'cnn.dense_units[1]'."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _type_at(loc):
    """(type, Field constraints) of the value at loc in Params: a model, a Literal, list[...], int..."""
    annotation, constraints = Params, []
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields[part]
            annotation, constraints = field.annotation, list(field.metadata)
        else:  # list[item] or dict[key, item]
            annotation, constraints = get_args(annotation)[-1], []
        while get_origin(annotation) is Annotated:
            constraints += annotation.__metadata__
            annotation = annotation.__origin__
    return annotation, [c for each in constraints for c in (each.metadata if isinstance(each, FieldInfo) else [each])]


def _range_text(constraints):
    """'between 0 and 1', '>= 1', '< 1' ... from a Field's ge/gt/le/lt ('(exclusive)' when gt or lt)."""
    bounds = {name: getattr(c, name) for c in constraints for name in ("ge", "gt", "le", "lt") if hasattr(c, name)}
    low, high = bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt"))
    low_open, high_open = "gt" in bounds, "lt" in bounds
    if low is not None and high is not None:
        return f"between {low} and {high}" + (" (exclusive)" if low_open or high_open else "")
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"
