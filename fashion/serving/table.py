"""What the prediction command prints: the photos to classify (folders expanded), and the results as a
table that fits a 120-column terminal, JSON or CSV.
"""

import csv
import io
import json
import logging
import textwrap
from pathlib import Path

import wcwidth

from fashion.data.images import SUPPORTED_EXTENSIONS, walk_image_files
from fashion.errors import PipelineError
from fashion.serving.classify import LOW_CONFIDENCE, NOT_LOCATED
from fashion.serving.decision import MEANING, UNFAMILIAR

log = logging.getLogger(__name__)

FORMATS = ("table", "json", "csv")
TABLE_WIDTH = 119  # columns: the table fits a 120-column terminal without wrapping
LOW_CONFIDENCE_SHORT = "low confidence"
NOT_LOCATED_SHORT = "no neckline located"


# --- what to classify ------------------------------------------------------------------

def find_images(paths):
    """[(shown path, file or None, error or None)] for the inputs, folders expanded recursively, in order.

    A missing path or an unsupported file named directly becomes an entry with an error; files in
    a folder that are not images are passed over (as the prepare stage does). No images at all: an error.
    """
    entries, empty_folders = [], []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            skipped = []
            found = [(str(file), file, None) for file in walk_image_files(path, path, skipped)]
            if not found:
                empty_folders.append(given)
            entries += found
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_EXTENSIONS:
                entries.append((given, path, None))
            else:
                entries.append((given, None, f"unsupported file type '{path.suffix}'; supported: "
                                             f"{', '.join(SUPPORTED_EXTENSIONS)}"))
        else:
            entries.append((given, None, "no such file or folder"))
    for folder in empty_folders:
        log.warning("folder %s has no image files (%s)", folder, ", ".join(SUPPORTED_EXTENSIONS))
    if not entries:
        raise PipelineError(f"no images to classify in {', '.join(map(str, paths))}: the folder(s) have no "
                            f"image files ({', '.join(SUPPORTED_EXTENSIONS)})")
    return entries


# --- output -----------------------------------------------------------------------------------

CSV_COLUMNS = ("path", "label", "probability", "decision", "top3", "novelty", "low_confidence", "located", "box",
               "error")


def csv_row(r):
    """One result record as CSV cells (CSV_COLUMNS): top 3 as label:probability;..., the box as
    top:bottom:left:right fractions of the photo; empty cells for what a file that failed has not."""
    def flag(value):
        return "" if value is None else str(value).lower()

    box = "" if not r.get("box") else ":".join(f"{r['box'][side]:.4f}" for side in ("top", "bottom", "left", "right"))
    return [r["path"], r["label"] or "", "" if r["probability"] is None else f"{r['probability']:.6f}",
            r.get("decision") or "", ";".join(f"{label}:{p:.4f}" for label, p in r["top3"]),
            "" if r.get("novelty") is None else f"{r['novelty']:.6f}", flag(r["low_confidence"]), flag(r["located"]),
            box, r["error"] or ""]


def render(results, fmt, title=None, rule=None):
    """The records as json, csv or a table (title: the model that answered; rule: how it decides, one line)."""
    if fmt == "json":
        return json.dumps(results, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(r) for r in results)
        return buffer.getvalue()
    return _table(results, title, rule)


def _table(results, title=None, rule=None):
    """One line per file, at most TABLE_WIDTH columns: long paths lose their middle, a note that does not
    fit goes on its own indented line below its row. `title` names the model that answered, `rule` its decisions."""
    rows = [("path", "label", "prob", "decision", "top 3")]
    notes = [""]
    for r in results:
        if r["error"]:
            rows.append((r["path"], "-", "-", "-", "-"))
            notes.append(f"error: {r['error']}")
        else:
            rows.append((r["path"], r["label"], f"{r['probability']:.3f}", r.get("decision") or "-",
                         ", ".join(f"{label} {p:.2f}" for label, p in r["top3"])))
            flags = [LOW_CONFIDENCE_SHORT] * bool(r["low_confidence"]) + [NOT_LOCATED_SHORT] * (r["located"] is False)
            notes.append("; ".join(flags))
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = _fit([max(display_width(row[c]) for row in rows) for c in range(5)],
                  any(LOW_CONFIDENCE_SHORT in note for note in notes))
    lines = ([f"model: {title}"] if title else []) + textwrap.wrap(f"decision: {rule}", TABLE_WIDTH) * bool(rule)
    for row, note in zip(rows, notes):
        cells = [shorten_middle(row[0], widths[0])] + [shorten_end(cell, w) for cell, w in zip(row[1:], widths[1:])]
        line = "  ".join(pad(cell, width) for cell, width in zip(cells, widths))
        if note and display_width(line) + 2 + display_width(note) <= TABLE_WIDTH:
            lines.append(f"{line}  {note}")
        else:
            lines.append(line.rstrip())
            if note:
                lines += ["    " + part for part in textwrap.wrap(note, TABLE_WIDTH - 4)]
    for short, meaning in ((LOW_CONFIDENCE_SHORT, LOW_CONFIDENCE), (NOT_LOCATED_SHORT, NOT_LOCATED)):
        if any(short in note for note in notes):
            lines += textwrap.wrap(f"{short}: {meaning.split(': ', 1)[1]}", TABLE_WIDTH)
    if any(r.get("decision") == UNFAMILIAR for r in results):
        lines += textwrap.wrap(f"{UNFAMILIAR}: {MEANING[UNFAMILIAR]}", TABLE_WIDTH)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _fit(widths, low_confidence_note):
    """Column widths that keep a row (and the low-confidence note, when there is one) within TABLE_WIDTH: the
    path column gives way first, then the top 3, then the label; each keeps at least a readable minimum."""
    widths = list(widths)
    budget = TABLE_WIDTH - 2 * (len(widths) - 1) - (2 + len(LOW_CONFIDENCE_SHORT) if low_confidence_note else 0)
    for column, least in ((0, 24), (4, 24), (1, 12), (0, 12)):
        excess = sum(widths) - budget
        if excess > 0:
            widths[column] = max(least, widths[column] - excess)
    return widths


def printable(text):
    """Text with control characters (a newline in a file name) shown as '?', so they cannot break the table."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def display_width(text):
    """Columns `text` takes in a terminal: East Asian wide characters take two, combining marks none."""
    return max(0, wcwidth.wcswidth(text))


def pad(text, width):
    return text + " " * (width - display_width(text))


def shorten_middle(text, width):
    """text, or its start and end around '...' within `width` columns (a path keeps its file name)."""
    if display_width(text) <= width:
        return text
    head, tail, room = "", "", width - 3
    for i in range(len(text)):
        if display_width(text[-(i + 1):]) > room - room // 3:
            break
        tail = text[-(i + 1):]
    for i in range(len(text)):
        if display_width(text[:i + 1]) > room - display_width(tail):
            break
        head = text[:i + 1]
    return f"{head}...{tail}"


def shorten_end(text, width):
    """text, or its start and '...' within `width` columns."""
    if display_width(text) <= width:
        return text
    kept = ""
    for ch in text:
        if display_width(kept + ch) > width - 3:
            break
        kept += ch
    return kept + "..."
