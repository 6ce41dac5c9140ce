"""Read and validate params.yaml against its schema (`Params`, fashion/params_schema.py: the one place that
knows what a valid configuration is).

Every stage calls `load_params()`, which checks the whole file, so a typo anywhere is reported before any
work starts, with the key's full name and the allowed values: `validate()` turns pydantic's errors into one
line per problem (`report`), each naming the dotted key. `params.model_dump()` (or `params.cnn.model_dump()`)
gives the plain dicts of JSON and YAML.
"""

import difflib
import re
from pathlib import Path
from typing import Annotated, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from fashion.errors import PipelineError
from fashion.names import PARAMS_FILE
from fashion.params_schema import Params
from fashion.params_types import AT

# --- reading --------------------------------------------------------------------------------------

def validate(params):
    """Check every key of params.yaml and the rules between keys; return them as a Params."""
    try:
        return Params.model_validate(params)
    except ValidationError as err:
        raise PipelineError("\n".join(report(err.errors()))) from None


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


# --- reporting: pydantic's errors as the project's lines -------------------------------------------

def report(errors):
    """One line per problem in pydantic's errors. A key that is missing only because an unknown key next to
    it is its misspelling gets no line of its own: the unknown key's line suggests it."""
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
        allowed = get_args(_type_at(error["loc"])[0])
        return f"'{key}' is {value!r}; allowed values: {', '.join(map(str, allowed))}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"'{key}' is {value}; it must be {_range_text(_type_at(error['loc'])[1])}"
    if kind in ("list_type", "too_short"):
        none = "" if any(getattr(c, "min_length", 0) for c in _type_at(error["loc"])[1]) else " (or [] for none)"
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
