"""The two groups of settings a trained model carries with it, each as one object.

`Preprocessing` turns a decoded photo into a model's input (image size, resize mode, region);
`BackboneRecipe` says which frozen backbone made the features (model, weights used, width,
precision, mirror, and the seed that random weights come from). The stage that decides each one
builds it from params once (prepare, extract) and writes it into its output; every later artifact
and `models/<kind>.json` copies it whole, and prediction rebuilds it from there alone.

Adding a setting to a group: a field here, its rule in `fashion/params_schema.py`, the code that applies it
(`fashion.data.images.preprocess` or `fashion.features.frozen_backbone.build_extractor`) and their tests.
"""

from dataclasses import asdict, dataclass, field, fields

from fashion.errors import outdated

# The part of each photo the models see (data.region), as fractions of its height and width.
FULL_REGION = {"top": 0.0, "bottom": 1.0, "left": 0.0, "right": 1.0}


class Recipe:
    """What both groups share: built from params, written to and read back from JSON records."""

    @classmethod
    def from_record(cls, record, source):
        """The object a JSON record holds; an outdated artifact (other keys) is a clear error."""
        names = {f.name for f in fields(cls)}
        if not isinstance(record, dict) or set(record) != names:
            raise outdated(source, f"was written by an older version of the pipeline (no complete "
                                   f"'{cls.RECORD_KEY}' record)")
        return cls(**record)

    @classmethod
    def from_artifact(cls, artifact, source):
        """The object stored under RECORD_KEY in an artifact's JSON (summary, features info, model info)."""
        return cls.from_record(artifact.get(cls.RECORD_KEY) if isinstance(artifact, dict) else None, source)

    def to_record(self):
        return asdict(self)


@dataclass(frozen=True)
class Preprocessing(Recipe):
    """Decoded photo -> model input: cut the box `locate` finds under the face (`fashion.data.locate`; `region`
    where it finds none, and always with locate none), then resize to image_size x image_size by `resize`.
    `locate_box` is None when locate is none, so that the box's settings alone never make a new recipe."""

    RECORD_KEY = "preprocessing"

    image_size: int
    resize: str = "pad"
    region: dict = field(default_factory=lambda: dict(FULL_REGION))
    locate: str = "none"
    locate_box: dict | None = None

    @classmethod
    def from_params(cls, params):
        """The recipe params' data section asks for; region and locate_box as plain dicts, as records hold them."""
        data = params.data
        return cls(image_size=data.image_size, resize=data.resize, region=data.region.model_dump(),
                   locate=data.locate, locate_box=None if data.locate == "none" else data.locate_box.model_dump())


@dataclass(frozen=True)
class BackboneRecipe(Recipe):
    """The frozen backbone(s) behind a head's features. `weights` is what was used: imagenet, none,
    a file path, or a mapping of backbone name to one of those (never 'auto')."""

    RECORD_KEY = "backbone"

    model: str
    weights: object
    alpha: float = 1.0
    precision: str = "float32"
    mirror: bool = False
    seed: int = 0

    @classmethod
    def from_params(cls, params):
        """The recipe params ask for; its weights may still be 'auto' until the extractor resolves them."""
        f = params.features
        return cls(model=params.model, weights=f.weights, alpha=f.alpha, precision=f.precision, mirror=f.mirror,
                   seed=params.seed)
