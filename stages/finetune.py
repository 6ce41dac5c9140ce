"""Stage `finetune`: the backbone's top blocks trained with the head, from pixels (fashion/models/finetune.py).

Off by default (finetune.enabled): then it writes only models/finetuned/finetuned.json saying so.
"""

from fashion.errors import run_stage
from fashion.models.finetune import finetune
from fashion.params import load_params
from fashion.paths import Paths


def main():
    finetune(load_params(), Paths())


if __name__ == "__main__":
    run_stage(main)
