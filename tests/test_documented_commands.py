"""Every command in the README and docs/ that runs the pipeline works as written.

The commands are read from the pages themselves: fenced code blocks (with `\\` continuations joined and
trailing `# comments` dropped) and inline code spans. For each:

- `dvc exp run ...`: its `-S` overrides go through DVC's own override parser (`dvc.utils.hydra`) onto a
  copy of params.yaml, and the result must pass `fashion.params.validate`; every file or folder an
  override names must exist (placeholders like /your/photos excepted); and offline, the backbone must
  have pretrained weights, unless the line says it needs internet.
- `dvc repro [stage...]`: the stages exist.
- `python -m stages.X ...` and `python -m fashion.presets ...`: the module exists and every `--option` is
  one its `--help` lists.
- `bash benchmarks/real_data.sh NAME`: NAME is a configuration the script knows.

The README's own neckline command then runs for real, up to extract, on a few photos.
"""

import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from fashion.errors import PipelineError
from fashion.params import read_params_file, validate
from fashion.preflight import declared_outputs
from tests.helpers import NECKLINES, REPO
from tests.repo_copy import copy_repo, dvc

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNERS = ("dvc exp run", "dvc repro", "python -m stages.", "python -m fashion.presets", "bash benchmarks/real_data.sh")
# Values that stand for the reader's own: not looked for on this machine.
PLACEHOLDERS = re.compile(r"^(/your/|/path/to/|path/to/|REPO\b)|\bNAME\b|HEAD_IP|\.\.\.")
# The keys whose values name files or folders.
PATH_KEYS = ("data.path", "features.weights", "data.exclude")
NEEDS_NETWORK = re.compile(r"internet|connected machine|network|weights file", re.IGNORECASE)


def code_lines(text):
    """(command, the line's comment) of every line of every fenced code block, and every inline code span."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            command, _, comment = line.partition("  #")
            found.append((command.strip().lstrip("$ ").strip(), comment))
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    # an inline command's comment: the words right after it
    found += [(m[1].strip(), m[2]) for m in re.finditer(r"`([^`\n]+)`([^`]{0,80})", outside)]
    return found


def documented_commands():
    """{(page, command): comment} for every runner command the pages give."""
    commands = {}
    for page in PAGES:
        for command, comment in code_lines(page.read_text()):
            command = re.sub(r"^(CUDA_VISIBLE_DEVICES=\S+|PIPELINE_VERBOSE=\S+)\s+", "", command)
            if "<" not in command:  # `stages.<stage>` is a pattern, not a redirection
                command = re.sub(r"\s*(>>?|\|).*$", "", command)  # output redirected or piped: the command is before
            if command.startswith(RUNNERS):
                commands[(page.relative_to(REPO).as_posix(), command)] = comment
    return commands


COMMANDS = documented_commands()


def test_the_pages_give_the_commands_this_test_reads():
    """The reader of the pages works: it finds the README's commands (a change of format would empty it)."""
    readme = {command for page, command in COMMANDS if page == "README.md"}
    assert "dvc exp run -S data.source=folder -S data.path=/your/photos" in readme
    assert any(command.startswith("python -m stages.predict") for command in readme)
    assert len(COMMANDS) >= 30, sorted(COMMANDS)


def preset_options(command):
    """The command with `$(python -m fashion.presets NAME)` replaced by what that prints (run for real)."""
    def expand(match):
        result = subprocess.run([sys.executable, "-m", "fashion.presets", match[1]], cwd=REPO, capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
    return re.sub(r"\$\(python -m fashion\.presets (\w+)\)", expand, command)


def overrides_of(command):
    """The -S values of a `dvc exp run` command, and its other arguments."""
    tokens = shlex.split(preset_options(command))[3:]
    overrides, others = [], []
    while tokens:
        token = tokens.pop(0)
        if token in ("-S", "--set-param"):
            overrides.append(tokens.pop(0))
        elif token in ("-n", "--name"):
            tokens.pop(0)
        elif token != "...":
            others.append(token)
    return overrides, others


def params_after(overrides, tmp_path):
    """params.yaml with the overrides applied by DVC's own code, as a dict."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    apply_overrides(path, overrides)
    return read_params_file(path)


def paths_named(params):
    """(key, value) of every file or folder the params name."""
    named = []
    for key in PATH_KEYS:
        value = params
        for part in key.split("."):
            value = value[part]
        values = value.values() if isinstance(value, dict) else [value]
        named += [(key, v) for v in values if isinstance(v, str) and v not in ("auto", "imagenet", "none")]
    return named


def offline_weights(params):
    """Whether every backbone of the params has pretrained weights on a machine with no network: a weights
    file, or auto where the repository carries the file."""
    from fashion.features.weights import bundled_weights

    weights = params["features"]["weights"]
    for name in params["model"].split("+"):
        value = weights.get(name) if isinstance(weights, dict) else weights
        if value == "imagenet" or (value == "auto" and bundled_weights(name, params["features"]["alpha"]) is None):
            return False
    return True


EXPERIMENTS = sorted(key for key in COMMANDS if key[1].startswith("dvc exp run"))


@pytest.mark.parametrize("page, command", EXPERIMENTS)
def test_a_documented_experiment_has_valid_overrides_real_files_and_real_weights(page, command, tmp_path):
    overrides, others = overrides_of(command)
    assert all(other.startswith("--") or other in STAGES for other in others), (page, command, others)
    # a placeholder for the reader's own value, made one the rules accept
    params = params_after([o.replace("HEAD_IP", "10.0.0.5") for o in overrides], tmp_path)
    try:
        validate(params)
    except PipelineError as err:
        pytest.fail(f"{page}: `{command}`: {err}")
    for key, value in paths_named(params):
        if not PLACEHOLDERS.search(value) and value not in OUTPUTS:  # a stage's output is made by the run
            assert (REPO / value).exists(), f"{page}: `{command}`: {key}={value} does not exist"
    comment = COMMANDS[(page, command)]
    assert " ..." in command or offline_weights(params) or NEEDS_NETWORK.search(command + comment), (
        f"{page}: `{command}` has no pretrained weights offline (it would stop and say so): give a weights "
        "file, or say on the line that it needs internet")


STAGES = set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
OUTPUTS = set(declared_outputs(REPO / "dvc.yaml"))


@pytest.mark.parametrize("page, command", sorted(key for key in COMMANDS if key[1].startswith("dvc repro")))
def test_a_documented_repro_names_real_stages(page, command):
    targets = [token for token in shlex.split(command)[2:] if not token.startswith("-")]
    assert set(targets) <= STAGES, f"{page}: `{command}`: no stage {set(targets) - STAGES}"


def help_text(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True)
    return result.stdout + result.stderr


MODULE_COMMANDS = sorted(key for key in COMMANDS if key[1].startswith(("python -m stages.", "python -m fashion.")))


@pytest.mark.parametrize("page, command", MODULE_COMMANDS)
def test_a_documented_module_command_exists_with_its_options(page, command):
    module = shlex.split(command)[2]
    if "<" in module:
        return  # the pattern every stage follows (docs/pipeline.md): the scripts are checked by test_dvc_deps
    assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{page}: `{command}`: no module {module}"
    options = {token.split("=")[0] for token in re.findall(r"(?<![\w-])--[a-z][\w-]*", command)}
    if options:
        listed = help_text(module)
        missing = {option for option in options if option not in listed}
        assert not missing, f"{page}: `{command}`: {module} has no option {missing}"


def test_every_documented_real_data_configuration_exists():
    result = subprocess.run(["bash", "benchmarks/real_data.sh", "--list"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    known = set(result.stdout.split())
    for (page, command), _ in COMMANDS.items():
        if command.startswith("bash benchmarks/real_data.sh"):
            tokens = shlex.split(command)[2:]
            if tokens and not tokens[0].startswith("-") and not PLACEHOLDERS.search(tokens[0]):
                assert tokens[0] in known, f"{page}: `{command}`: no configuration {tokens[0]}"


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_readme_neckline_command_runs_as_written_up_to_extract(tmp_path):
    """The README's command for the neckline photos, as written (a MobileNet 1.0 file, features.alpha left at
    its default), on 2 photos per class at 32 px: extract follows the file's width."""
    command = next(command for page, command in COMMANDS
                   if page == "README.md" and "data/necklines" in command and command.startswith("dvc exp run"))
    overrides, _ = overrides_of(command)
    photos = tmp_path / "photos"
    for folder in sorted(NECKLINES().iterdir()):
        (photos / folder.name).mkdir(parents=True)
        for photo in sorted(folder.glob("*.jpg"))[:3]:
            shutil.copy(photo, photos / folder.name / photo.name)
    shared = {key: value for key, value in (o.split("=", 1) for o in overrides)}
    weights = (REPO / shared["features.weights"]).resolve()
    repo = copy_repo(tmp_path / "repo", {"data.image_size": 32, "split.validation": 0.34, "split.test": 0.34})
    out = dvc(repo, "exp", "run", *[arg for o in overrides for arg in ("-S", o)],
              "-S", f"data.path={photos}", "-S", f"features.weights={weights}", "extract")
    assert "Running stage 'extract'" in out
    assert "features.alpha follows the weights file: 1.0, not 0.25" in out
    info = yaml.safe_load((repo / "data/features/info.json").read_text())
    assert info["feature_dim"] == 1024 and info["backbone"]["alpha"] == 1.0
