"""The exclude file: what its lines mean, and decisions written by many processes at once, none lost."""

import subprocess
import sys

import pytest

from fashion.data.exclusions import decisions, parse, read_exclusions, record_decision
from fashion.errors import PipelineError
from tests.helpers import REPO


def test_lines_are_paths_digests_kept_photos_or_comments(tmp_path):
    data = tmp_path / "photos"
    digest = "AB" * 32
    found = parse(f"# a comment\n\n  henley/a.jpg  \n./v_neck//b.jpg\n{digest}\n# keep round_neck/c.jpg\n"
                  f"{data}/henley/d.jpg\n../other/e.jpg\n/elsewhere/f.jpg\nhenley\\\\g.jpg\n", data)
    assert found.paths == {"henley/a.jpg", "v_neck/b.jpg", "henley/d.jpg", "henley/g.jpg"}
    assert found.hashes == {digest.lower()}
    assert found.kept == {"round_neck/c.jpg"}
    assert found.ignored == [f"line 8: '../other/e.jpg' is outside data.path ({data})",
                             f"line 9: '/elsewhere/f.jpg' is outside data.path ({data})"]
    assert len(found) == 5


def test_an_exclude_file_that_is_not_text_is_a_clear_error(tmp_path):
    (tmp_path / "list.txt").write_bytes(b"henley/a.jpg\n\x00\x01binary")
    with pytest.raises(PipelineError, match="is not a text file"):
        read_exclusions(tmp_path / "list.txt", tmp_path)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9.jpg\n".encode("latin-1"))
    with pytest.raises(PipelineError, match="is not a text file"):
        read_exclusions(tmp_path / "latin1.txt", tmp_path)


def test_a_decision_replaces_the_earlier_one_and_keeps_every_other_line(tmp_path):
    exclude = tmp_path / "exclude.txt"
    record_decision(exclude, "henley/a.jpg", "exclude")  # no file yet: created
    exclude.write_text(exclude.read_text() + "# my note\nv_neck/b.jpg\n")
    record_decision(exclude, "henley/a.jpg", "keep")
    record_decision(exclude, "v_neck/c.jpg", "exclude")
    assert exclude.read_text().splitlines() == ["# my note", "v_neck/b.jpg", "# keep henley/a.jpg", "v_neck/c.jpg"]
    assert decisions(exclude, tmp_path) == {"henley/a.jpg": "keep", "v_neck/b.jpg": "exclude",
                                            "v_neck/c.jpg": "exclude"}
    with pytest.raises(ValueError, match="decision must be one of"):
        record_decision(exclude, "v_neck/c.jpg", "maybe")


WRITER = """
import sys
from fashion.data.exclusions import record_decision
for i in range(int(sys.argv[3])):
    record_decision(sys.argv[1], f"{sys.argv[2]}/{i}.jpg", "exclude" if i % 2 else "keep")
"""


def test_processes_writing_at_once_lose_no_line(tmp_path):
    exclude = tmp_path / "exclude.txt"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(exclude), f"writer{n}", "40"], cwd=REPO)
               for n in range(6)]
    assert [w.wait(timeout=120) for w in writers] == [0] * 6
    lines = exclude.read_text().splitlines()
    expected = {(f"writer{n}/{i}.jpg" if i % 2 else f"# keep writer{n}/{i}.jpg") for n in range(6) for i in range(40)}
    assert sorted(lines) == sorted(expected)
