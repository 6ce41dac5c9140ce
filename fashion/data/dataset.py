"""The prepared data set on disk, and how later stages stream it.

`data/prepared/` holds:
- `images.npy`: every usable image, resized, as one (N, size, size, 3) uint8 NumPy array;
- `manifest.csv`: one row per image: its row in images.npy, source path, label, split and group
  (the item it shows: split.group, or the path itself);
- `summary.json`: counts per class and split, and every skipped file with its reason.

Images are written and read a batch at a time with plain file I/O (NpyWriter, NpyReader; not a memory
map, whose touched pages would stay in the process's resident set), so memory is bounded by the batch,
not by the data set. The CNN's scratch arrays (fashion/models/cnn.py) go through the same two classes.
"""

import csv
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fashion.data.recipes import Preprocessing
from fashion.errors import missing, outdated

IMAGES_FILE = "images.npy"
MANIFEST_FILE = "manifest.csv"
SUMMARY_FILE = "summary.json"
SPLITS = ("train", "validation", "test")
# located: whether a locator placed the image's box (data.locate: face or auto), empty with data.locate none;
# locator: which one (face, pose, closeup, none); view: front, back, or empty when unknown (fashion.data.locate);
# box_*: the part of the photo the image was cut from, as fractions of its height and width.
LOCATION_COLUMNS = ("located", "locator", "view", "box_top", "box_bottom", "box_left", "box_right")
MANIFEST_COLUMNS = ("row", "path", "label", "label_index", "split", "group", "sha256", *LOCATION_COLUMNS)

# A fixed-size .npy header (format 1.0) so the row count can be rewritten in place once the number of rows
# is known, without copying the data. (numpy's own header for the same array differs by a ", " before
# its closing brace, which would change every images.npy DVC has cached.)
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER_BYTES = 128


class NpyWriter:
    """Append batches of (n, *row_shape) arrays of one dtype to an .npy file; `close()` writes the row count.

    Plain writes, so memory holds one batch; a memory map (np.lib.format.open_memmap) would keep every page
    written resident: 659 MB of resident memory for a 617 MB array written 256 rows at a time, 107 MB here.
    """

    def __init__(self, path, row_shape, dtype=np.uint8):
        self.path = Path(path)
        self.row_shape, self.dtype = tuple(int(n) for n in row_shape), np.dtype(dtype)
        self.rows = 0
        self._file = open(self.path, "wb")
        self._file.write(self._header())

    def _header(self):
        fields = {"descr": self.dtype.str, "fortran_order": False, "shape": (self.rows, *self.row_shape)}
        text = repr(fields)
        body_len = _NPY_HEADER_BYTES - len(_NPY_MAGIC) - 2
        padded = text + " " * (body_len - len(text) - 1) + "\n"
        return _NPY_MAGIC + body_len.to_bytes(2, "little") + padded.encode("latin1")

    def append(self, batch):
        """Write the batch's rows after the others; returns their row numbers."""
        batch = np.ascontiguousarray(batch, dtype=self.dtype)
        if batch.shape[1:] != self.row_shape:
            raise ValueError(f"expected an array of shape (n, {', '.join(map(str, self.row_shape))}), got {batch.shape}")
        self._file.write(batch.tobytes())
        first = self.rows
        self.rows += len(batch)
        return range(first, self.rows)

    def close(self):
        self._file.seek(0)
        self._file.write(self._header())
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ImageStoreWriter(NpyWriter):
    """images.npy: (n, size, size, 3) uint8 batches appended."""

    def __init__(self, path, size):
        super().__init__(path, (size, size, 3), np.uint8)
        self.size = size


class NpyReader:
    """Random access to the rows of an .npy file (format 1.0, C order) with bounded memory.

    Rows are read with os.pread into a fresh array: memory holds the rows asked for. np.load(mmap_mode="r")
    would be shorter, but the pages it touches stay in the process's resident set: streaming a 617 MB array
    256 rows at a time took 616 MB of resident memory through a memory map, 138 MB here.
    """

    def __init__(self, path, what="an array of rows"):
        self.path = Path(path)
        if not self.path.is_file():
            raise missing(self.path)
        with open(self.path, "rb") as handle:
            if np.lib.format.read_magic(handle) != (1, 0):
                raise outdated(self.path, f"is not {what}")
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            self._offset = handle.tell()
        if fortran or not shape:
            raise outdated(self.path, f"is not {what}")
        self.shape, self.dtype = shape, dtype
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self):
        return self.shape[0]

    def read(self, rows):
        """The rows at the given row numbers, in that order, as one array."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        flat = out.view(np.uint8).reshape(len(rows), self._row_bytes)
        start = 0
        # Read runs of consecutive rows with one call: streaming in order is one read per batch.
        while start < len(rows):
            end = start + 1
            while end < len(rows) and rows[end] == rows[end - 1] + 1:
                end += 1
            nbytes = (end - start) * self._row_bytes
            data = os.pread(self._fd, nbytes, self._offset + int(rows[start]) * self._row_bytes)
            if len(data) != nbytes:
                raise outdated(self.path, "is truncated")
            flat[start:end] = np.frombuffer(data, dtype=np.uint8).reshape(end - start, self._row_bytes)
            start = end
        return out

    def batches(self, rows, batch_size):
        """Yield the rows at `rows` in order, batch_size at a time, the next batch read while this one is used."""
        return prefetched(self.read(rows[start:start + batch_size]) for start in range(0, len(rows), batch_size))

    def close(self):
        os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ImageStore(NpyReader):
    """images.npy: (n, size, size, 3) uint8 rows, read with bounded memory."""

    def __init__(self, path):
        super().__init__(path, "a prepared image array")
        shape = self.shape
        if self.dtype != np.uint8 or len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
            self.close()
            raise outdated(self.path, "is not a prepared image array")
        self.size = shape[1]


def write_manifest(path, records):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for record in records:
            # Records made without the locator's columns (a benchmark's tiled copy) leave them empty.
            writer.writerow({column: record[column] if column in record or column not in LOCATION_COLUMNS else ""
                             for column in MANIFEST_COLUMNS})


def read_manifest(prepared_dir):
    """The manifest as a list of dicts, with row and label_index as ints."""
    path = Path(prepared_dir) / MANIFEST_FILE
    if not path.is_file():
        raise missing(path)
    with open(path, newline="") as handle:
        records = list(csv.DictReader(handle))
    for record in records:
        record["row"] = int(record["row"])
        record["label_index"] = int(record["label_index"])
    return records


def read_summary(prepared_dir):
    path = Path(prepared_dir) / SUMMARY_FILE
    if not path.is_file():
        raise missing(path)
    return json.loads(path.read_text())


def split_arrays(records, split):
    """Row numbers and label indices of one split, in manifest order."""
    chosen = [record for record in records if record["split"] == split]
    rows = np.array([record["row"] for record in chosen], dtype=np.int64)
    labels = np.array([record["label_index"] for record in chosen], dtype=np.int64)
    return rows, labels


def prefetched(batches):
    """Yield from `batches` while a background thread already reads the next item."""
    iterator = iter(batches)
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(next, iterator, None)
        while (batch := pending.result()) is not None:
            pending = reader.submit(next, iterator, None)
            yield batch


def summarize(params, preprocessing, classes, records, skipped):
    counts = {name: {split: 0 for split in SPLITS} for name in classes}
    for record in records:
        counts[record["label"]][record["split"]] += 1
    for per_split in counts.values():
        per_split["total"] = sum(per_split.values())
    totals = {split: sum(c[split] for c in counts.values()) for split in (*SPLITS, "total")}
    return {
        "source": params.data.source,
        "path": params.data.path,
        Preprocessing.RECORD_KEY: preprocessing.to_record(),
        "classes": classes,
        "counts": counts,
        "totals": totals,
        "skipped_count": len(skipped),
        "skipped_by_kind": dict(sorted(Counter(s["kind"] for s in skipped).items())),
        "skipped": skipped,
    }


def located_counts(records, classes):
    """{class or 'total': {located, not_located}}: how many images a locator placed a box in (data.locate face
    or auto)."""
    counts = {name: {"located": 0, "not_located": 0} for name in (*classes, "total")}
    for record in records:
        column = "located" if record["located"] == "true" else "not_located"
        counts[record["label"]][column] += 1
        counts["total"][column] += 1
    return counts


def column_counts(records, classes, column):
    """{class or 'total': {value: count}} of a manifest column (locator, view; an empty view is 'unknown')."""
    counts = {name: Counter() for name in (*classes, "total")}
    for record in records:
        value = record.get(column) or "unknown"
        counts[record["label"]][value] += 1
        counts["total"][value] += 1
    return {name: dict(sorted(count.items())) for name, count in counts.items()}
