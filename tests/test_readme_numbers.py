"""The numbers the README quotes from the committed default run are the ones in metrics/."""

import json
import re

from tests.helpers import REPO


def test_the_readme_quotes_the_committed_default_run():
    text = " ".join((REPO / "README.md").read_text().split())
    quoted = re.search(r"On its (\d+) test images the head scores balanced accuracy ([\d.]+) \[([\d.]+), ([\d.]+)\], "
                       r"the CNN ([\d.]+) \[([\d.]+), ([\d.]+)\]", text)
    assert quoted, "the README's sentence on the default run's scores is gone or reworded: update this test"
    images, *numbers = quoted.groups()
    test = json.loads((REPO / "metrics/test.json").read_text())
    assert int(images) == test["head"]["test_images"] == test["cnn"]["test_images"]
    committed = []
    for model in ("head", "cnn"):
        scores = json.loads((REPO / f"metrics/{model}.json").read_text())
        committed += [scores["bal_acc"], scores["bal_lo"], scores["bal_hi"]]
    assert [float(n) for n in numbers] == committed
