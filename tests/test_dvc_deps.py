"""dvc.yaml lists every project module a stage runs, and no other; the layout keeps stage scripts apart.

`python -m tests.test_dvc_deps` writes the lists: each stage's deps in dvc.yaml become one flow list,
`deps: [script, every module it runs (sorted), the stage's other deps]`, wrapped at 118 columns; the rest of
the file, comments included, stays as written (a comment inside a deps list is refused: it would be lost).

DVC decides whether a stage is up to date from its deps alone: a module missing from them lets DVC
serve results made by old code, and a module listed without being used re-runs the stage for nothing.
The imports are read from the code itself (every `import`, at the top or inside a function), followed
transitively through the project's modules (stages/ and the library package fashion/).
"""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from fashion.paths import Paths
from tests.helpers import REPO

PACKAGES = ("fashion", "stages")


def module_file(repo, name):
    """The file of a project module (dotted name), or None when it is not one."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    path = repo.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def direct_imports(repo, path):
    """The project module files that the file at path imports, anywhere in it, with the non-empty __init__.py of
    every package on the way (Python runs them first)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from fashion.data import dataset` imports fashion/data/dataset.py; `from fashion.x import y`, x.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                file = module_file(repo, ".".join(parts[:end]))
                if file is not None and (file.name != "__init__.py" or file.read_text().strip()):
                    found.add(file.relative_to(repo).as_posix())
    return found


def closure(repo, path):
    """path (relative) and every project module file it imports, transitively."""
    seen, todo = set(), [path]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += direct_imports(repo, repo / current)
    return seen


def dvc_stages():
    """{stage name: (the script its cmd runs, the project module files its deps list)}."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        command = stage["cmd"].split()
        script = command[command.index("-m") + 1].replace(".", "/") + ".py"
        listed = {dep for dep in stage.get("deps", []) if isinstance(dep, str) and dep.endswith(".py")}
        out[name] = script, listed
    return out


FLOW_WIDTH = 118  # the columns a stage's deps list is wrapped at


def flow_item(dep):
    """A dep as an item of a YAML flow sequence: plain when YAML reads it back as itself, else double-quoted
    (`"${data.exclude}"`: a plain scalar in a flow sequence cannot hold `{` or `}`)."""
    if not isinstance(dep, str):
        raise TypeError(f"dvc.yaml: a dep that is not a path: {dep!r}")
    if re.fullmatch(r"[\w./-]+", dep) and yaml.safe_load(f"[{dep}]") == [dep]:
        return dep
    return json.dumps(dep)


def flow_deps(deps, indent="    "):
    """The lines `deps: [a, b, ...]`, wrapped at FLOW_WIDTH columns with each line's items under the first."""
    head = f"{indent}deps: ["
    words = [flow_item(dep) + "," for dep in deps[:-1]] + [flow_item(deps[-1]) + "]"]
    lines, line = [], head + words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) > FLOW_WIDTH:
            lines.append(line)
            line = " " * len(head) + word
        else:
            line += " " + word
    return "".join(f"{text}\n" for text in lines + [line])


def write_module_deps(dvc_yaml=REPO / "dvc.yaml"):
    """Rewrite each stage's deps in dvc.yaml as one flow list: the script, every module it runs (sorted), then the
    stage's other deps in their order. Only the deps are rewritten, as text: the rest of the file (comments
    included) stays as it is. Returns the stages whose deps text changed."""
    text = Path(dvc_yaml).read_text()
    stages = yaml.safe_load(text)["stages"]
    lines = text.splitlines(keepends=True)
    changed, stage, out, i = [], None, [], 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"\S", line):  # a top-level key (stages:, plots:) or comment
            stage = None
        if match := re.fullmatch(r"  ([\w-]+):\s*", line):
            stage = match[1] if match[1] in stages else None
        if stage is None or not re.fullmatch(r"    deps:.*\s*", line):
            out.append(line)
            i += 1
            continue
        # The deps value: the rest of this line and the lines after it indented deeper than `deps:`.
        end = scan = i + 1
        while scan < len(lines) and (lines[scan].startswith("     ") or not lines[scan].strip()):
            scan += 1
            end = scan if lines[scan - 1].strip() else end
        block = lines[i:end]
        if any(re.search(r"(^|\s)#", part.strip()) for part in [block[0].split(":", 1)[1]] + block[1:]):
            raise ValueError(f"{dvc_yaml}: a comment inside the deps of stage '{stage}'; move it to the stage's "
                             "comment above (the deps are rewritten)")
        command = stages[stage]["cmd"].split()
        script = command[command.index("-m") + 1].replace(".", "/") + ".py"
        deps = stages[stage]["deps"] or []
        others = [dep for dep in deps if not (isinstance(dep, str) and dep.endswith(".py"))]
        modules = closure(REPO, script)
        rewritten = flow_deps([script] + sorted(modules - {script}) + others)
        if rewritten != "".join(block):
            changed.append(stage)
        out.append(rewritten)
        i = end
    Path(dvc_yaml).write_text("".join(out))
    return changed


SCRIPTS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "stages").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_dvc_yaml_lists_exactly_the_modules_each_stage_runs(stage):
    script, listed = dvc_stages()[stage]
    needed = closure(REPO, script)
    assert not needed - listed, f"dvc.yaml: stage '{stage}' runs {', '.join(sorted(needed - listed))}, missing " \
                                "from its deps"
    assert not listed - needed, f"dvc.yaml: stage '{stage}' lists {', '.join(sorted(listed - needed))} in its " \
                                "deps without importing it"


@pytest.mark.parametrize("folder", ["stages", "fashion", "tests", "benchmarks"])
def test_nothing_imports_a_stage_script(folder):
    """Stage scripts, the library, benchmarks and tests import only the library; what a stage does lives there."""
    importers = {}
    for path in sorted((REPO / folder).rglob("*.py")):
        stages = sorted(f for f in direct_imports(REPO, path) if f.startswith("stages/"))
        if stages:
            importers[path.relative_to(REPO).as_posix()] = stages
    assert not importers, f"these import stage scripts; import the library (fashion/) instead: {importers}"


def test_stages_holds_one_script_per_stage_and_the_two_commands():
    run_by_dvc = {script for script, _ in dvc_stages().values()}
    assert {"stages/prepare.py", "stages/extract.py", "stages/evaluate.py"} <= run_by_dvc
    assert set(SCRIPTS) - run_by_dvc == {"stages/predict.py", "stages/serve.py", "stages/tag.py"}, \
        "a module in stages/ that no stage runs should be a library module (fashion/)"


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_stage_script_is_thin(script):
    lines = (REPO / script).read_text().splitlines()
    assert len(lines) <= 100, f"{script} has {len(lines)} lines: move what it does into the library"


def test_every_output_dvc_yaml_declares_is_a_path_named_in_paths():
    """Paths are named once: dvc.yaml's outs and metrics are the ones fashion.paths.Paths() gives the stages."""
    paths = Paths()
    named = {str(getattr(paths, name)) for name in dir(paths) if not name.startswith("_")
             and isinstance(getattr(paths, name), Path)}
    named |= {str(paths.history(kind)) for kind in ("cnn", "head", "finetuned")}
    named |= {str(paths.model_metrics(kind)) for kind in ("cnn", "head", "finetuned", "baseline")}
    named |= {str(paths.risk_coverage(kind)) for kind in ("cnn", "head", "finetuned", "baseline")}
    named |= {str(paths.model(kind).with_suffix(suffix)) for kind in ("cnn", "head") for suffix in (".keras", ".json")}
    named |= {str(paths.plot_folder(kind) / f"{name}") for kind in ("cnn", "head", "finetuned")
              for name in ("predictions.csv", "confusion.png", "curves.png", "mistakes.png")}
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    declared = {next(iter(out)) if isinstance(out, dict) else out
                for stage in stages.values() for out in stage.get("outs", []) + stage.get("metrics", [])}
    assert declared - named == set(), f"dvc.yaml declares outputs no Paths property names: {declared - named}"


def test_the_import_reader_sees_imports_inside_functions():
    # classify imports the extractor only when it rebuilds a head's backbone: still a dependency.
    assert "fashion/features/frozen_backbone.py" in direct_imports(REPO, REPO / "fashion/serving/classify.py")
    assert "fashion/features/weights.py" in closure(REPO, "fashion/serving/classify.py")


def test_the_exclude_file_named_by_data_exclude_is_a_dep_of_prepare(tmp_path):
    """Editing the exclude file (by hand, with --top, or on the review page) re-runs prepare; DVC follows the param."""
    from tests.repo_copy import copy_repo, dvc

    root = copy_repo(tmp_path / "repo", {"data.exclude": "lists/mine.txt"})
    (root / "lists").mkdir()
    (root / "lists/mine.txt").write_text("")
    status = json.loads(dvc(root, "status", "prepare", "--json"))
    changed = next(entry["changed deps"] for entry in status["prepare"] if "changed deps" in entry)
    assert "lists/mine.txt" in changed and "exclude.txt" not in changed


def test_the_labels_file_named_by_data_confirmed_is_a_dep_of_prepare(tmp_path):
    """An answer on the review queue re-runs prepare at the next `dvc repro`; DVC follows the param."""
    from tests.repo_copy import copy_repo, dvc

    root = copy_repo(tmp_path / "repo", {"data.confirmed": "reviews/labels.csv"})
    (root / "reviews").mkdir()
    (root / "reviews/labels.csv").write_text("path,label,sha256\n")
    status = json.loads(dvc(root, "status", "prepare", "--json"))
    changed = next(entry["changed deps"] for entry in status["prepare"] if "changed deps" in entry)
    assert "reviews/labels.csv" in changed and "confirmed.csv" not in changed


if __name__ == "__main__":
    print("dvc.yaml: module deps rewritten for", ", ".join(write_module_deps()) or "no stage (all were right)")
