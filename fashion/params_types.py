"""The building blocks of params.yaml's schema (fashion/params_schema.py): what every section is (`Section`),
the values no built-in type checks (a backbone list, a weights mapping, a regular expression...), the number
types several keys share (`Fraction` for a share of 0..1, `Epochs`, `BatchSize`...), each named once, and the
boxes (a region of an image, the box under a face).

A value's check raises `bad_value`, a rule between keys `broken_rule`; `fashion.params.validate` words both
as one line naming the dotted key (the rule names the section's keys as AT.key).
"""

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WrapValidator, model_validator
from pydantic_core import PydanticCustomError

from fashion.names import BACKBONES

AT = "{at}"  # in a rule's message: the dotted key of the section the rule belongs to


def bad_value(problem, sub=""):
    """The error of one value, reported as `'<key><sub>' <problem>` (sub: a key inside the value)."""
    return PydanticCustomError("params_value", "{problem}", {"problem": problem, "sub": sub})


def broken_rule(message):
    """The error of a rule between keys of one section; the message names the section's keys as AT.key."""
    return PydanticCustomError("params_rule", "{message}", {"message": message})


class Section(BaseModel):
    """A mapping of params.yaml: every key required, no other key, no conversions (a boolean is not a
    number, '5' is not 5, a tuple not a list), no infinite numbers; a float key takes 1 and gives 1.0.
    A section given as a model instead of a dict is checked again all the same."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, revalidate_instances="always")


# --- values that no built-in type checks ------------------------------------------------------------


def _text(value):
    """A non-empty string (not only spaces)."""
    if not isinstance(value, str) or not value.strip():
        raise bad_value(f"must be a non-empty string, got {value!r}")
    return value


def _empty_is_none(value):
    """'' means none, as null does (data.exclude)."""
    return None if value == "" else value


def _backbones(value):
    """One backbone name, or several joined by '+' (their features side by side), each once."""
    names = value.split("+") if isinstance(value, str) else [value]
    unknown = [name for name in names if not isinstance(name, str) or name not in BACKBONES]
    if unknown or len(set(names)) != len(names):
        raise bad_value(f"is {value!r}; allowed values: {', '.join(BACKBONES)}, or several of them joined by '+' "
                        "(e.g. mobilenet+mobilenet_v2: the head gets both backbones' features side by side)")
    return value


def _weights(value):
    """auto | imagenet | none | a file path, or a mapping of backbone name to one of those."""
    if not isinstance(value, dict):
        return _text(value)
    if not value:
        raise bad_value("is an empty mapping; give a value per backbone, e.g. {mobilenet: path/to/file.h5}")
    for name, each in value.items():
        if name not in BACKBONES:
            raise bad_value(f"names no backbone; allowed: {', '.join(BACKBONES)}", sub=f".{name}")
        if not isinstance(each, str) or not each.strip():
            raise bad_value(f"must be a non-empty string, got {each!r}", sub=f".{name}")
    return value


def _one_group(value):
    """null, or a regular expression whose first group names the item a file belongs to."""
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as err:
        raise bad_value(f"is not a valid regular expression ({err}): {value!r}") from None
    if compiled.groups < 1:
        raise bad_value(f"has no group in {value!r}; put the part of the file name that names the item in "
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
        raise bad_value(f"is {value!r}; allowed values: '' (start a Ray cluster on this machine), auto (the cluster "
                        "this machine joined with `ray start`), or host:port of a cluster's head node, e.g. "
                        "10.0.0.5:6379")
    return value


def _class_counts(value):
    """A non-empty mapping of class name to image count; names read as strings (a class named 1 is '1')."""
    if not isinstance(value, dict) or not value:
        raise bad_value(f"must be a mapping of class name to image count, got {value!r}")
    return {str(name): count for name, count in value.items()}


def _as_written(value, handler):
    """Check the value, but keep it as written (alpha 1 stays 1): it goes into records and cache fingerprints."""
    handler(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
OptionalText = Annotated[Text | None, BeforeValidator(_empty_is_none)]  # null or '' (none), or a string
Backbones = Annotated[str, BeforeValidator(_backbones)]  # model: one backbone, or several joined by '+'
Weights = Annotated[str | dict[str, str], BeforeValidator(_weights)]  # one value, or one per backbone
Alpha = Annotated[Literal[0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4], WrapValidator(_as_written)]
ItemPattern = Annotated[Text | None, AfterValidator(_one_group)]  # split.group
RayAddress = Annotated[str, BeforeValidator(_ray_address)]
ClassCounts = Annotated[dict[str, Annotated[int, Field(ge=1, le=100_000)]], BeforeValidator(_class_counts)]

# --- numbers several keys share -----------------------------------------------------------------------

Fraction = Annotated[float, Field(ge=0, le=1)]  # a share of 0..1: a region's edge, an augmentation's strength
Share = Annotated[float, Field(gt=0, lt=1)]  # a held-out share, neither none nor all
DropRate = Annotated[float, Field(ge=0, lt=1)]
Smoothing = Annotated[float, Field(ge=0, le=0.5)]  # label smoothing
Rotation = Annotated[float, Field(ge=0, le=0.5)]  # a share of a full turn
Shift = Annotated[float, Field(ge=0, le=0.9)]  # zoom and shift: a share of the image
ImageSize = Annotated[int, Field(ge=16, le=1024)]
Width = Annotated[int, Field(ge=1, le=65536)]  # a layer's units
Widths = list[Width]  # layer widths; cnn.filters needs at least one
BatchSize = Annotated[int, Field(ge=1, le=65536)]
Epochs = Annotated[int, Field(ge=1, le=10_000)]  # epochs, and the patience of early stopping
LearningRate = Annotated[float, Field(gt=0, le=1)]
CacheSize = Annotated[float, Field(gt=0, le=100_000)]  # gigabytes


# --- the boxes -------------------------------------------------------------------------------------

class Region(Section):
    """A box as fractions of an image's height and width, each measured from the top and left edges."""

    WHAT: ClassVar[str] = "image"

    top: Fraction
    bottom: Fraction
    left: Fraction
    right: Fraction

    @model_validator(mode="after")
    def _not_empty(self):
        """The box must have a height and a width."""
        for start, end in (("top", "bottom"), ("left", "right")):
            low, high = getattr(self, start), getattr(self, end)
            if high <= low:
                raise broken_rule(
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
            raise broken_rule(
                f"'{AT}.bottom' ({self.bottom:g}) must be greater than '{AT}.top' ({self.top:g}); both are face "
                "heights below the top of the face (the default box: top 0.8, bottom 2.6)")
        if self.bottom <= 1:
            raise broken_rule(
                f"'{AT}.bottom' is {self.bottom:g}, so the box ends inside or above the face (1 is the chin); the "
                "neckline is below it: use a bottom above 1 (the default box: top 0.8, bottom 2.6)")
        return self
