"""Read and validate params.yaml: the one place that knows what a valid configuration is.

Every stage calls `load_params()`, which checks the whole file, so a typo anywhere is
reported before any work starts, with the key's full name and the allowed values.
"""

import difflib
import math
import re
from pathlib import Path

import yaml

from fashion.data.recipes import LOCATORS, RESIZE_MODES
from fashion.errors import PipelineError
from fashion.features.backbones import BACKBONES, BLOCKS

PARAMS_FILE = "params.yaml"

SOURCES = ("synthetic", "folder", "fashion_mnist")
SYNTHETIC_DIR = "data/synthetic"
ENGINES = ("local", "ray")


# --- validators: each takes (value, key) and returns the value or raises PipelineError ---

def _fail(key, message):
    raise PipelineError(f"{PARAMS_FILE}: '{key}' {message}")


def choice(*allowed):
    def check(value, key):
        if value not in allowed:
            _fail(key, f"is {value!r}; allowed values: {', '.join(map(str, allowed))}")
        return value
    return check


def integer(low=None, high=None):
    def check(value, key):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, f"must be a whole number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            _fail(key, f"is {value}; it must be {_range_text(low, high)}")
        return value
    return check


def number(low=None, high=None, low_open=False, high_open=False):
    def check(value, key):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            _fail(key, f"must be a number, got {value!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            _fail(key, f"is {value}; it must be {_range_text(low, high, low_open, high_open)}")
        return float(value)
    return check


def text():
    def check(value, key):
        if not isinstance(value, str) or not value.strip():
            _fail(key, f"must be a non-empty string, got {value!r}")
        return value
    return check


def optional_text():
    """null or an empty string (none), or a non-empty string."""
    def check(value, key):
        if value is None or value == "":
            return None
        return text()(value, key)
    return check


def boolean():
    def check(value, key):
        if not isinstance(value, bool):
            _fail(key, f"must be true or false, got {value!r}")
        return value
    return check


def backbone_model():
    """One backbone name, or several joined by '+' (their features side by side)."""
    def check(value, key):
        names = value.split("+") if isinstance(value, str) else [value]
        unknown = [name for name in names if name not in BACKBONES]
        if unknown or len(set(names)) != len(names):
            _fail(key, f"is {value!r}; allowed values: {', '.join(BACKBONES)}, or several of them joined by '+' "
                       "(e.g. mobilenet+mobilenet_v2: the head gets both backbones' features side by side)")
        return value
    return check


def weights_choice():
    """auto | imagenet | none | a file path, or a mapping of backbone name to one of those."""
    def check(value, key):
        if isinstance(value, dict):
            if not value:
                _fail(key, "is an empty mapping; give a value per backbone, e.g. {mobilenet: path/to/file.h5}")
            for name, each in value.items():
                if name not in BACKBONES:
                    _fail(f"{key}.{name}", f"names no backbone; allowed: {', '.join(BACKBONES)}")
                text()(each, f"{key}.{name}")
            return value
        return text()(value, key)
    return check


def group_pattern():
    """null, or a regular expression whose first group names the item a file belongs to."""
    def check(value, key):
        if value is None:
            return None
        text()(value, key)
        try:
            compiled = re.compile(value)
        except re.error as err:
            _fail(key, f"is not a valid regular expression ({err}): {value!r}")
        if compiled.groups < 1:
            _fail(key, f"has no group in {value!r}; put the part of the file name that names the item in "
                       r"parentheses, e.g. '-(\d+)-\d+\.[a-z]+$' for files named <...>-<item>-<view>.jpg")
        return value
    return check


def ray_address():
    """Where the Ray engine finds its cluster: '' (start one on this machine), 'auto' (the one this
    machine belongs to) or host:port of its head node."""
    def check(value, key):
        if value is None:
            value = ""
        valid = isinstance(value, str) and (
            value in ("", "auto") or re.fullmatch(r"[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5}", value))
        if not valid:
            _fail(key, f"is {value!r}; allowed values: '' (start a Ray cluster on this machine), auto (the cluster "
                       "this machine joined with `ray start`), or host:port of a cluster's head node, e.g. "
                       "10.0.0.5:6379")
        return value
    return check


def counts_by_name():
    """A mapping of class name to a positive image count (the synthetic data set's classes)."""
    def check(value, key):
        if not isinstance(value, dict) or not value:
            _fail(key, f"must be a mapping of class name to image count, got {value!r}")
        return {str(name): integer(1, 100_000)(count, f"{key}.{name}") for name, count in value.items()}
    return check


def positive_integers(allow_empty=False):
    """A list of whole numbers >= 1 (layer widths); empty only with allow_empty."""
    def check(value, key):
        if not isinstance(value, list) or not (value or allow_empty):
            _fail(key, f"must be a list of whole numbers, e.g. [32, 64]{' (or [] for none)' if allow_empty else ''}, "
                       f"got {value!r}")
        return [integer(1, 65536)(item, f"{key}[{i}]") for i, item in enumerate(value)]
    return check


def _range_text(low, high, low_open=False, high_open=False):
    if low is not None and high is not None:
        return f"between {low} and {high}" + (" (exclusive)" if low_open or high_open else "")
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"


# Every augmentation fashion/data/image_data.py can add, and its valid values; cnn.augment has them all.
AUGMENT = {
    "flip": boolean(),
    "rotation": number(0, 0.5),
    "zoom": number(0, 0.9),
    "shift": number(0, 0.9),
    "brightness": number(0, 1),
    "contrast": number(0, 1),
    "hue": number(0, 1),
    "grayscale": number(0, 1),
    "channel_shuffle": boolean(),
    "invert": number(0, 1),
}

SCHEMA = {
    "seed": integer(0, 2**32 - 1),
    "model": backbone_model(),
    "data": {
        "source": choice(*SOURCES),
        "path": text(),
        "image_size": integer(16, 1024),
        "resize": choice(*RESIZE_MODES),
        "region": {side: number(0, 1) for side in ("top", "bottom", "left", "right")},
        "locate": choice(*LOCATORS),
        "locate_box": {"top": number(0, 20), "bottom": number(0, 20), "half_width": number(0, 20, low_open=True)},
        "max_pixels": integer(1, 2**40),
        "min_side": integer(1, 65535),
        "max_aspect": number(1, 65535),
        "cache": boolean(),
        "cache_max_gb": number(0, 100_000, low_open=True),
        "exclude": optional_text(),
        "exclude_test": boolean(),
    },
    "split": {
        "validation": number(0, 1, low_open=True, high_open=True),
        "test": number(0, 1, low_open=True, high_open=True),
        "group": group_pattern(),
    },
    "synthetic": {
        "image_size": integer(32, 1024),
        "counts": counts_by_name(),
    },
    "features": {
        "weights": weights_choice(),
        "alpha": choice(0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        "precision": choice("float32", "bfloat16"),
        "mirror": boolean(),
        "batch_size": integer(1, 4096),
        "cache": boolean(),
        "cache_max_gb": number(0, 100_000, low_open=True),
        "engine": choice(*ENGINES),
        "ray": {
            "address": ray_address(),
            "workers": integer(1, 4096),
            "num_gpus": number(0, 64),
        },
    },
    "smote": {
        "enabled": boolean(),
        "k_neighbors": integer(1, 100),
    },
    "head": {
        "units": integer(1, 65536),
        "dropout": number(0, 1, high_open=True),
        "input_dropout": number(0, 1, high_open=True),
        "l2": number(0, 10),
        "epochs": integer(1, 10_000),
        "patience": integer(1, 10_000),
        "learning_rate": number(0, 1, low_open=True),
        "batch_size": integer(1, 65536),
        "calibrate": boolean(),
    },
    "cnn": {
        "image_size": integer(16, 1024),
        "filters": positive_integers(),
        "convolutions": integer(1, 8),
        "dense_units": positive_integers(allow_empty=True),
        "dropout": number(0, 1, high_open=True),
        "batch_norm": boolean(),
        "region": {
            "top": number(0, 1),
            "bottom": number(0, 1),
            "left": number(0, 1),
            "right": number(0, 1),
        },
        "standardize": boolean(),
        "pooling": choice("flatten", "global_average"),
        "epochs": integer(1, 10_000),
        "patience": integer(1, 10_000),
        "reduce_lr_patience": integer(0, 10_000),
        "learning_rate": number(0, 1, low_open=True),
        "schedule": choice("constant", "cosine"),
        "weight_decay": number(0, 1),
        "label_smoothing": number(0, 0.5),
        "batch_size": integer(1, 65536),
        "class_weight": boolean(),
        "calibrate": boolean(),
        "augment": AUGMENT,
    },
    "finetune": {
        "enabled": boolean(),
        "unfreeze": integer(0, max(BLOCKS.values())),
        "learning_rate": number(0, 1, low_open=True),
        "warmup_epochs": integer(0, 10_000),
        "epochs": integer(1, 10_000),
        "patience": integer(1, 10_000),
        "batch_size": integer(1, 65536),
        "weight_decay": number(0, 1),
        "label_smoothing": number(0, 0.5),
        "class_weight": boolean(),
        "calibrate": boolean(),
        # The fine-tuned backbone sees ImageNet colours: no colour-breaking augmentation.
        "augment": {key: AUGMENT[key] for key in ("flip", "rotation", "zoom", "brightness", "contrast")},
    },
    "evaluate": {
        "confidence_threshold": number(0, 1),
        "calibration_bins": integer(2, 1000),
        "mistakes": integer(0, 100),
        "bootstrap": integer(0, 100_000),
    },
    "crossval": {
        "folds": integer(2, 50),
        "repeats": integer(1, 100),
        "validation": number(0, 1, low_open=True, high_open=True),
    },
}


def validate(params):
    """Check every key of params.yaml and the rules between keys; return the validated copy."""
    validated = _validate_section(params, SCHEMA, prefix="")
    _check_cross_field(validated)
    return validated


def _validate_section(params, schema, prefix):
    if not isinstance(params, dict):
        where = f"'{prefix.rstrip('.')}'" if prefix else "the file"
        raise PipelineError(f"{PARAMS_FILE}: {where} must be a mapping of keys to values, got {params!r}")
    for key in params:
        if key not in schema:
            raise PipelineError(_unknown_key_message(prefix, key, schema))
    validated = {}
    for key, rule in schema.items():
        full_key = prefix + key
        if key not in params:
            raise PipelineError(f"{PARAMS_FILE}: '{full_key}' is missing; add it (see the README for its meaning)")
        if isinstance(rule, dict):
            validated[key] = _validate_section(params[key], rule, full_key + ".")
        else:
            validated[key] = rule(params[key], full_key)
    return validated


def _unknown_key_message(prefix, key, schema):
    suggestion = difflib.get_close_matches(str(key), list(schema), n=1)
    hint = f" (did you mean '{prefix}{suggestion[0]}'?)" if suggestion else ""
    allowed = ", ".join(prefix + name for name in schema)
    return f"{PARAMS_FILE}: unknown key '{prefix}{key}'{hint}; allowed keys here: {allowed}"


def _check_cross_field(params):
    split = params["split"]
    if split["validation"] + split["test"] >= 1:
        raise PipelineError(
            f"{PARAMS_FILE}: 'split.validation' + 'split.test' = {split['validation'] + split['test']:g}; "
            "they must add up to less than 1 so that some images are left for training")
    cnn = params["cnn"]
    if cnn["image_size"] < 2 ** len(cnn["filters"]):
        raise PipelineError(
            f"{PARAMS_FILE}: 'cnn.image_size' {cnn['image_size']} is too small for {len(cnn['filters'])} "
            f"convolution blocks (each halves the image); use cnn.image_size >= {2 ** len(cnn['filters'])} "
            "or fewer entries in cnn.filters")
    if cnn["schedule"] == "cosine" and cnn["reduce_lr_patience"]:
        raise PipelineError(
            f"{PARAMS_FILE}: 'cnn.reduce_lr_patience' is {cnn['reduce_lr_patience']} but 'cnn.schedule' is cosine; "
            "the learning rate follows one or the other: set cnn.reduce_lr_patience=0 or cnn.schedule=constant")
    _check_finetune(params)
    weights = params["features"]["weights"]
    if isinstance(weights, dict):
        missing = [name for name in params["model"].split("+") if name not in weights]
        if missing:
            raise PipelineError(
                f"{PARAMS_FILE}: 'features.weights' has no entry for {', '.join(missing)} (model is "
                f"{params['model']!r}); add one per backbone, e.g. features.weights.{missing[0]}: imagenet")
    data = params["data"]
    _check_region(data["region"], "data.region", "photo")
    _check_region(cnn["region"], "cnn.region", "prepared image")
    _check_locate_box(data["locate_box"])
    if data["source"] == "synthetic" and Path(data["path"]) != Path(SYNTHETIC_DIR):
        raise PipelineError(
            f"{PARAMS_FILE}: 'data.source' is synthetic but 'data.path' is {data['path']!r}; the generated "
            f"data set lives in {SYNTHETIC_DIR}. To use your own photos set data.source=folder "
            "(dvc exp run -S data.source=folder -S data.path=/your/photos)")


def _check_finetune(params):
    finetune = params["finetune"]
    if not finetune["enabled"]:
        return
    names = params["model"].split("+")
    if len(names) > 1:
        raise PipelineError(
            f"{PARAMS_FILE}: 'finetune.enabled' is true but 'model' is {params['model']!r}, several backbones side "
            "by side; fine-tuning trains one: set model to one of them, or finetune.enabled=false")
    blocks = BLOCKS[names[0]]
    if finetune["unfreeze"] > blocks:
        raise PipelineError(
            f"{PARAMS_FILE}: 'finetune.unfreeze' is {finetune['unfreeze']}, but {names[0]} has {blocks} blocks; "
            f"use 0 (the backbone frozen, only the head trains) .. {blocks} (every block)")
    if finetune["warmup_epochs"] >= finetune["epochs"]:
        raise PipelineError(
            f"{PARAMS_FILE}: 'finetune.warmup_epochs' ({finetune['warmup_epochs']}) must be less than "
            f"'finetune.epochs' ({finetune['epochs']}): the learning rate warms up, then decays")


def _check_region(region, key, what):
    for start, end in (("top", "bottom"), ("left", "right")):
        if region[end] <= region[start]:
            raise PipelineError(
                f"{PARAMS_FILE}: '{key}.{end}' ({region[end]:g}) must be greater than '{key}.{start}' "
                f"({region[start]:g}); they are fractions of the {what}'s {'height' if start == 'top' else 'width'} "
                f"measured from its {start} edge (the whole {what}: {start} 0, {end} 1)")


def _check_locate_box(box):
    if box["bottom"] <= box["top"]:
        raise PipelineError(
            f"{PARAMS_FILE}: 'data.locate_box.bottom' ({box['bottom']:g}) must be greater than 'data.locate_box.top' "
            f"({box['top']:g}); both are face heights below the top of the face (the default box: top 0.8, bottom 2.6)")
    if box["bottom"] <= 1:
        raise PipelineError(
            f"{PARAMS_FILE}: 'data.locate_box.bottom' is {box['bottom']:g}, so the box ends inside or above the face "
            "(1 is the chin); the neckline is below it: use a bottom above 1 (the default box: top 0.8, bottom 2.6)")


def load_params(path=PARAMS_FILE):
    """Read and validate params.yaml; raise PipelineError with a readable message when it is wrong."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path} not found; run the stage from the repository root, where params.yaml lives")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise PipelineError(f"{path} is not valid YAML: {err}") from None
    return validate(params)
