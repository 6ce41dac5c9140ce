"""What the prediction command prints: the photos to classify (folders expanded), and the results as a
table that fits a 120-column terminal, JSON or CSV.
"""

import csv
import io
import json
import logging
import os
import textwrap
from pathlib import Path

import wcwidth

from fashion.data.files import SUPPORTED_EXTENSIONS, link_problem, walk_image_files
from fashion.errors import PipelineError
from fashion.serving.classify import BACK_VIEW, LOW_CONFIDENCE, NOT_LOCATED
from fashion.serving.decision import MEANING, UNFAMILIAR

log = logging.getLogger(__name__)

FORMATS = ("table", "json", "csv")
TABLE_WIDTH = 119  # columns: the table fits a 120-column terminal without wrapping
LOW_CONFIDENCE_SHORT = "low confidence"
NOT_LOCATED_SHORT = "no neckline located"
BACK_VIEW_SHORT = "back view"


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
            entries.append((given, None, missing_reason(path)))
    for folder in empty_folders:
        log.warning("folder %s has no image files (%s)", folder, ", ".join(SUPPORTED_EXTENSIONS))
    if not entries:
        raise PipelineError(f"no images to classify in {', '.join(map(str, paths))}: the folder(s) have no "
                            f"image files ({', '.join(SUPPORTED_EXTENSIONS)})")
    return entries


def missing_reason(path):
    """Why a named path is neither a file nor a folder: a broken link, a link loop, or nothing there."""
    try:
        os.stat(path)
    except OSError as err:
        if os.path.islink(path):
            return link_problem(path, err)[1]
    return "no such file or folder"


# --- output -----------------------------------------------------------------------------------

CSV_COLUMNS = ("path", "label", "probability", "decision", "top3", "novelty", "low_confidence", "located", "locator",
               "view", "box", "error")


def csv_row(r):
    """One result record as CSV cells (CSV_COLUMNS): top 3 as label:probability;..., the box as
    top:bottom:left:right fractions of the photo; empty cells for what a file that failed has not."""
    def flag(value):
        return "" if value is None else str(value).lower()

    box = "" if not r.get("box") else ":".join(f"{r['box'][side]:.4f}" for side in ("top", "bottom", "left", "right"))
    return [r["path"], r["label"] or "", "" if r["probability"] is None else f"{r['probability']:.6f}",
            r.get("decision") or "", ";".join(f"{label}:{p:.4f}" for label, p in r["top3"]),
            "" if r.get("novelty") is None else f"{r['novelty']:.6f}", flag(r["low_confidence"]), flag(r["located"]),
            r.get("locator") or "", r.get("view") or "", box, r["error"] or ""]


def render(results, fmt, title=None, trained_on=None, rule=None):
    """The records as json, csv or a table (title: the model that answered; trained_on: what it learnt from;
    rule: how it decides; one line each)."""
    if fmt == "json":
        return json.dumps(results, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(r) for r in results)
        return buffer.getvalue()
    return _table(results, title, trained_on, rule)


def _table(results, title=None, trained_on=None, rule=None):
    """One line per file, at most TABLE_WIDTH columns: a long path keeps its file name whole and loses folders
    from the middle; a note that does not fit goes on its own indented line below its row. When a file name
    alone is too long for the path column, every photo's path goes on a line of its own, above its answer.
    `title` names the model that answered, `trained_on` says what it learnt from, `rule` how it decides."""
    rows = [("path", "label", "prob", "decision", "top 3")]
    notes = [""]
    for r in results:
        if r["error"]:
            rows.append((r["path"], "-", "-", "-", "-"))
            notes.append(f"error: {r['error']}")
        else:
            rows.append((r["path"], r["label"], f"{r['probability']:.3f}", r.get("decision") or "-",
                         ", ".join(f"{label} {p:.2f}" for label, p in r["top3"])))
            flags = [LOW_CONFIDENCE_SHORT] * bool(r["low_confidence"]) + [NOT_LOCATED_SHORT] * (r["located"] is False) \
                + [BACK_VIEW_SHORT] * (r.get("view") == "back")
            notes.append("; ".join(flags))
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    low_note = any(LOW_CONFIDENCE_SHORT in note for note in notes)
    columns = len(rows[0])
    widths = _fit([max(display_width(row[c]) for row in rows) for c in range(columns)], low_note)
    names = max(display_width(file_name(row[0])) for row in rows[1:]) if len(rows) > 1 else 0
    stacked = names + len(ELLIPSIS_FOLDER) > widths[0]
    if stacked:  # paths on their own lines: the other columns take the whole width
        widths = _fit([0] + [max(display_width(row[c]) for row in rows) for c in range(1, columns)], low_note)
    lines = [f"model: {title}"] if title else []
    lines += textwrap.wrap(trained_on, TABLE_WIDTH, subsequent_indent="  ") if trained_on else []
    lines += textwrap.wrap(f"decision: {rule}", TABLE_WIDTH, subsequent_indent="  ") if rule else []
    for row, note in zip(rows, notes):
        if stacked:
            lines.append(shorten_folder(row[0], TABLE_WIDTH))
            row = ("",) + row[1:]
        cells = [shorten_folder(row[0], widths[0])] + [shorten_end(cell, w) for cell, w in zip(row[1:], widths[1:])]
        line = "  ".join(pad(cell, width) for cell, width in zip(cells, widths))
        if note and display_width(line) + 2 + display_width(note) <= TABLE_WIDTH:
            lines.append(f"{line}  {note}")
        else:
            lines.append(line.rstrip())
            if note:
                lines += ["    " + part for part in textwrap.wrap(note, TABLE_WIDTH - 4)]
    for short, meaning in ((LOW_CONFIDENCE_SHORT, LOW_CONFIDENCE), (NOT_LOCATED_SHORT, NOT_LOCATED),
                           (BACK_VIEW_SHORT, BACK_VIEW)):
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
    for column, least in ((0, 24), (len(widths) - 1, 24), (1, 12), (0, 0)):
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


ELLIPSIS_FOLDER = ".../"


def file_name(path):
    """The last part of a shown path (after the last / or \\)."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def shorten_folder(text, width):
    """A path within `width` columns: its file name whole, its folders shortened in the middle around '...'
    (or '.../' and the name when even one folder does not fit; the name alone when it is longer than width)."""
    if display_width(text) <= width:
        return text
    name = file_name(text)
    folder = text[:len(text) - len(name)]
    room = width - display_width(name)
    if room < len(ELLIPSIS_FOLDER) + 1:
        return ELLIPSIS_FOLDER + name if room >= len(ELLIPSIS_FOLDER) else name
    return shorten_middle(folder, room) + name


def shorten_middle(text, width):
    """text, or its start and end around '...' within `width` columns."""
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
