"""Classify new photos with the trained models, and warn when a prediction should not be trusted.

    python -m stages.predict PATH... [--model cnn|head|finetuned] [--threshold 0.8] [--format table|json|csv]

PATH is an image file or a folder (read recursively). Every photo goes through exactly what
the training data went through: `fashion.data.images.load_located` (the decoder, neckline locator and
resizing of the prepare stage, at the size, resize mode, locator and region the model was trained
with), then the CNN, or
the same frozen backbone with its `preprocess_input` and the head (`fashion.serving.classify`).

Exit status: 0 when every image was classified; 1 when some could not be (their `error`
says why; the others still get results); 2 when nothing could be done (no trained model,
no images found, not one file could be classified, bad arguments).
"""

import logging

from fashion.errors import run_stage
from fashion.serving.predict import run


def main(argv=None):
    return run(argv)


if __name__ == "__main__":
    run_stage(main, level=logging.WARNING)
