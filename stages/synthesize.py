"""Stage `synthesize`: the embedded default data set, photo-like garment images, when you bring no photos.

Writes data/synthetic/<class>/<class>_0000.jpg, ... from params.yaml (`seed`, `synthetic.image_size`,
`synthetic.counts`), as an ordinary folder of class sub-folders, so it goes through the same code as
your photos. How the images are drawn: fashion/data/synthetic.py.
"""

import logging

from fashion.atomic import check_writable
from fashion.data.synthetic import check_size, generate_dataset, validated_counts
from fashion.errors import PipelineError, run_stage
from fashion.params import PARAMS_FILE, load_params
from fashion.paths import Paths

log = logging.getLogger(__name__)


def main(paths=Paths()):
    params = load_params()
    settings = params["synthetic"]
    try:  # params.py checks types and ranges; the class names are the generator's to check
        validated_counts(settings["counts"])
        check_size(settings["image_size"])
    except ValueError as err:
        raise PipelineError(f"{PARAMS_FILE}: 'synthetic': {err}") from None
    check_writable(paths.synthetic)
    written = generate_dataset(paths.synthetic, settings["counts"], settings["image_size"], params["seed"])
    log.info("wrote %d images of %d px to %s: %s", sum(written.values()), settings["image_size"], paths.synthetic,
             ", ".join(f"{name} {count}" for name, count in written.items()))


if __name__ == "__main__":
    run_stage(main)
