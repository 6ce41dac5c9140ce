"""Fashion-MNIST in its official IDX files (gzip-compressed or not).

http://yann.lecun.com/exdb/mnist/ describes the format: a big-endian magic number whose
third byte is the element type (0x08 = unsigned byte) and fourth the number of
dimensions, then one big-endian uint32 per dimension, then the data.
"""

import gzip
from pathlib import Path

import numpy as np

from fashion.errors import PipelineError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# The official file stems; "t10k" is the official test set.
PARTS = ("train", "t10k")
_UNSIGNED_BYTE = 0x08


def read_idx(path):
    """The array stored in one IDX file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:
        raise PipelineError(f"{path}: cannot read IDX file ({err}); download it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UNSIGNED_BYTE:
        raise PipelineError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header_end + int(np.prod(shape))
    if len(data) != expected:
        raise PipelineError(f"{path}: header says shape {shape} ({expected} bytes) but the file has "
                            f"{len(data)} bytes; the file is truncated or corrupt, download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header_end).reshape(shape)


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise PipelineError(
        f"{folder}: missing {stem}[.gz]; data.source=fashion_mnist needs the four official files "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
        "(gzip-compressed or not) in data.path")


def read_fashion_mnist(folder):
    """{part: (images (n, 28, 28) uint8, labels (n,) uint8, images file name)} for train and t10k."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"data.path {folder} is not a folder; point it at the folder with the IDX files")
    parts = {}
    for part in PARTS:
        images_path = _find(folder, f"{part}-images-idx3-ubyte")
        labels_path = _find(folder, f"{part}-labels-idx1-ubyte")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise PipelineError(f"{folder}: {images_path.name} has shape {images.shape} but "
                                f"{labels_path.name} has shape {labels.shape}; they must hold one label per image")
        if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise PipelineError(f"{labels_path}: label {labels.max()} is outside 0-9; this is not Fashion-MNIST")
        parts[part] = (images, labels, images_path.name)
    return parts
