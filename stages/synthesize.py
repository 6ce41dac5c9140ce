"""Stage `synthesize`: the embedded default data set, photo-like garment images, when you bring no photos.

Writes data/synthetic/<class>/<class>_0000.jpg, ... from params.yaml (`seed`, `synthetic.image_size`,
`synthetic.counts`), as an ordinary folder of class sub-folders, so it goes through the same code as
your photos. How the images are drawn: fashion/data/synthetic/.
"""

from fashion.data.synthetic.writer import synthesize
from fashion.errors import run_stage
from fashion.params import load_params
from fashion.paths import Paths


def main():
    synthesize(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
