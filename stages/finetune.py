"""Stage `finetune`: let the backbone learn the attribute, starting from the trained head.

Two-phase transfer learning: train_head fitted the head on frozen features; here the whole model
(pixels -> augmentation -> preprocess_input -> backbone -> head, fashion/models/finetuning.py) trains with the
top `finetune.unfreeze` blocks of the backbone open, at a low learning rate with warm-up and cosine
decay, early stopping on validation loss with the best weights kept, then temperature scaling on
validation like the other models. Images stream from the image store a batch at a time.

With `finetune.enabled: false` (the default: fine-tuning on a CPU takes minutes per epoch) the stage
only writes models/finetuned/finetuned.json saying so, and evaluate, predict and serve leave the model out.

Writes models/finetuned/ (finetuned.keras + finetuned.json, atomically, as one folder) and
plots/finetuned/history.csv.
"""

from fashion.errors import run_stage
from fashion.models.finetuned import finetune
from fashion.params import load_params
from fashion.paths import Paths


def main():
    finetune(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
