"""Where the images come from: a folder of class sub-folders (the generated default is one too), a folder
already split into train/ validation/ test/, or Fashion-MNIST's IDX files. Each becomes a list of
Candidates, images to try; unusable files are skipped with a reason.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from fashion.data.files import SUPPORTED_EXTENSIONS, skip, walk_image_files
from fashion.data.idx import FASHION_MNIST_CLASSES, read_fashion_mnist
from fashion.data.images import decode_rgb
from fashion.errors import PipelineError

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    """An image to try: where it comes from, its class, and how to decode it."""
    path: str                                 # as shown to users: relative to data.path
    label: str
    load: Callable[[], np.ndarray]            # returns HxWx3 uint8 RGB, or raises ImageError
    fixed_split: str | None = None            # a split given by the source (Fashion-MNIST's t10k, a test/ folder)
    file: Path | None = None                  # the file it is decoded from (None: arrays, not files), for the decode cache
    confirmed: bool = False                   # labelled on the review queue (data.confirmed), not found in data.path



# A data set already split into folders: train/ plus validation/ and/or test/, each with class
# sub-folders. What the given folders become (the rest of the training folder is split as usual):
SPLIT_FOLDERS = {
    frozenset({"train", "test"}): {"test": "test"},
    # A single held-out folder is the test split; validation for early stopping comes from train/.
    frozenset({"train", "validation"}): {"validation": "test"},
    frozenset({"train", "validation", "test"}): {"validation": "validation", "test": "test"},
}


def discover_folder(root, min_size, limits):
    """Class names and candidates from a folder with one sub-folder per class, or from a folder
    already split into train/ and validation/ and/or test/ folders of class sub-folders.

    JPEGs are decoded at a reduced scale when they are larger than `min_size` on both sides."""
    root = Path(root)
    if not root.exists():
        raise PipelineError(f"data.path {root} does not exist; point data.path at a folder with one "
                            "sub-folder per class (dvc exp run -S data.path=/your/photos)")
    if not root.is_dir():
        raise PipelineError(f"data.path {root} is a file, not a folder; it must hold one sub-folder per class")
    skipped = []
    top = _sub_folders(root, root, skipped)
    layout = SPLIT_FOLDERS.get(frozenset(d.name for d in top))
    if layout is None:
        if len(top) < 2:
            found = ", ".join(d.name for d in top) or "none"
            raise PipelineError(f"{root} has {len(top)} class folder(s) ({found}); a classifier needs at "
                                "least two classes: put each class's images in its own sub-folder of data.path")
        return [d.name for d in top], _class_candidates(root, top, min_size, limits, skipped), skipped

    # Given held-out folders first, so that a training image identical to a test image is the one dropped.
    order = sorted(top, key=lambda d: ("test", "validation", "train").index(d.name))
    by_split = {d.name: _sub_folders(root, d, skipped) for d in order}
    classes = [d.name for d in by_split["train"]]
    if len(classes) < 2:
        raise PipelineError(f"{root / 'train'} has {len(classes)} class folder(s); a classifier needs at least "
                            "two classes: put each class's training images in its own sub-folder of train/")
    candidates = []
    for split_dir in order:
        extra = sorted({d.name for d in by_split[split_dir.name]} - set(classes))
        if extra:
            raise PipelineError(f"{split_dir} has class folder(s) {', '.join(extra)} that {root / 'train'} does "
                                "not have; the model cannot learn a class it never trains on: add training images "
                                "or remove those folders")
        for candidate in _class_candidates(root, by_split[split_dir.name], min_size, limits, skipped):
            candidate.fixed_split = layout.get(split_dir.name)
            candidates.append(candidate)
    log.info("data.path is split into folders: %s", ", ".join(
        f"{name}/ -> {layout.get(name, 'train and validation')}" for name in by_split))
    return classes, candidates, skipped


def _sub_folders(root, folder, skipped):
    """The visible sub-folders of folder, sorted; files there are skipped with a reason."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            skip(skipped, entry.relative_to(root), "hidden", "hidden file or folder")
        elif entry.is_dir():
            found.append(entry)
        else:
            skip(skipped, entry.relative_to(root), "outside_class_folder",
                  "file is not inside a class folder; move it into the folder of its class")
    return found


def _class_candidates(root, class_dirs, min_size, limits, skipped):
    candidates = []
    for class_dir in class_dirs:
        files = list(walk_image_files(root, class_dir, skipped, warn=False))  # scan has warned of these
        if not files:
            raise PipelineError(f"class folder {class_dir} has no image files; add images "
                                f"({', '.join(SUPPORTED_EXTENSIONS)}) or remove the folder")
        for file in files:
            candidates.append(Candidate(
                path=file.relative_to(root).as_posix(), label=class_dir.name, file=file,
                load=lambda file=file: decode_rgb(file, limits.max_pixels, min_size, limits.min_side, limits.max_aspect)))
    return candidates


def confirmed_candidates(answers, min_size, limits):
    """Candidates of the training split from the review queue's usable answers [(path, label)]
    (fashion.data.confirmed.usable_answers); they come after data.path's, which win a duplicate. Their paths
    are absolute, so that every reader of the manifest finds them whatever data.path is."""
    files = [(Path(os.path.abspath(path)), label) for path, label in answers]
    return [Candidate(path=str(file), label=label, file=file, fixed_split="train", confirmed=True,
                      load=lambda file=file: decode_rgb(file, limits.max_pixels, min_size, limits.min_side,
                                                        limits.max_aspect))
            for file, label in files]


def discover_fashion_mnist(folder):
    """Candidates from the IDX files; t10k is the official test split and comes first,
    so that a training image identical to a test image is the one dropped."""
    parts = read_fashion_mnist(folder)
    candidates = []
    for part in ("t10k", "train"):
        images, labels, file_name = parts[part]
        for index, (image, label) in enumerate(zip(images, labels)):
            candidates.append(Candidate(
                path=f"{file_name}#{index}", label=FASHION_MNIST_CLASSES[label],
                load=lambda image=image: np.repeat(image[:, :, None], 3, axis=2),
                fixed_split="test" if part == "t10k" else None))
    return list(FASHION_MNIST_CLASSES), candidates, []
