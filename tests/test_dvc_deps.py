"""dvc.yaml lists every project module a stage runs, and no other; no stage script imports another.

DVC decides whether a stage is up to date from its deps alone: a module missing from them lets DVC
serve results made by old code, and a module listed without being used re-runs the stage for nothing.
The imports are read from the code itself (every `import`, at the top or inside a function), followed
transitively through the project's modules.
"""

import ast
import json

import pytest
import yaml

from tests.conftest import REPO

PACKAGE = "stages"


def direct_imports(module):
    """The project modules that stages/<module>.py imports, anywhere in the file."""
    tree = ast.parse((REPO / PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from stages import dataset` imports fashion/data/dataset.py; `from stages.x import y` imports x.
            names = ([f"{node.module}.{alias.name}" for alias in node.names] if node.module == PACKAGE
                     else [node.module])
        else:
            continue
        for name in names:
            head, _, rest = name.partition(".")
            if head == PACKAGE and rest and (REPO / PACKAGE / f"{rest.split('.')[0]}.py").is_file():
                found.add(rest.split(".")[0])
    return found


def closure(module):
    """module and every project module it imports, transitively."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += direct_imports(current)
    return seen


def is_script(module):
    """A stage script (or command) is a module run with `python -m`: it has a __main__ block."""
    return 'if __name__ == "__main__":' in (REPO / PACKAGE / f"{module}.py").read_text()


def dvc_stages():
    """{stage name: (module its cmd runs, the project modules its deps list)}."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        command = stage["cmd"].split()
        module = command[command.index("-m") + 1].removeprefix(f"{PACKAGE}.")
        listed = {dep.removeprefix(f"{PACKAGE}/").removesuffix(".py") for dep in stage.get("deps", [])
                  if isinstance(dep, str) and dep.startswith(f"{PACKAGE}/") and dep.endswith(".py")}
        out[name] = module, listed
    return out


SCRIPTS = sorted(m.stem for m in (REPO / PACKAGE).glob("*.py") if is_script(m.stem))


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_dvc_yaml_lists_exactly_the_modules_each_stage_runs(stage):
    module, listed = dvc_stages()[stage]
    needed = closure(module)
    missing = sorted(f"{PACKAGE}/{m}.py" for m in needed - listed)
    unused = sorted(f"{PACKAGE}/{m}.py" for m in listed - needed)
    assert not missing, f"dvc.yaml: stage '{stage}' runs {', '.join(missing)}, missing from its deps"
    assert not unused, f"dvc.yaml: stage '{stage}' lists {', '.join(unused)} in its deps without importing it"


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_stage_script_imports_no_other_stage_script(script):
    others = sorted(m for m in closure(script) - {script} if is_script(m))
    assert not others, f"stages/{script}.py imports the stage script(s) {', '.join(others)}; move what it " \
                       "needs into a library module"


def test_every_stage_script_is_a_stage_or_a_command():
    run_by_dvc = {module for module, _ in dvc_stages().values()}
    assert {"prepare", "extract", "evaluate"} <= run_by_dvc
    assert set(SCRIPTS) - run_by_dvc == {"predict", "serve"}, "a script that no stage runs should be a library module"


def test_the_import_reader_sees_imports_inside_functions(tmp_path, monkeypatch):
    # classify imports the extractor only when it rebuilds a head's backbone: still a dependency.
    assert "extractor" in direct_imports("classify")
    assert "backbones" in closure("params")


def test_the_exclude_file_named_by_data_exclude_is_a_dep_of_prepare(tmp_path):
    """Editing the exclude file (by hand, with --top, or on the review page) re-runs prepare; DVC follows the param."""
    from tests.repo_copy import copy_repo, dvc

    root = copy_repo(tmp_path / "repo", {"data.exclude": "lists/mine.txt"})
    (root / "lists").mkdir()
    (root / "lists/mine.txt").write_text("")
    status = json.loads(dvc(root, "status", "prepare", "--json"))
    changed = next(entry["changed deps"] for entry in status["prepare"] if "changed deps" in entry)
    assert "lists/mine.txt" in changed and "exclude.txt" not in changed
