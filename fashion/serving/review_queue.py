"""The server's review queue (/queue): the photos the tag command could not answer on its own, for a person.

It lists the `review` answers of a tag CSV (`python -m stages.tag FOLDER --output tags.csv`), most uncertain
first (lowest top probability), then the `unfamiliar` ones, each with its photo, the box the model looked at
and its top 3. A person picks the right class, or "no neckline visible" or "not a garment"; each answer goes
into the labels file (data.confirmed, fashion/data/confirmed.py: rewritten atomically under a lock, so
concurrent reviewers never lose one), and the next `dvc repro` trains on the photos answered with a class.
The tag CSV and the labels file are read on every request: a new tag run shows at once.
"""

import csv
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel

from fashion.data.confirmed import NOT_A_CLASS, answers_by_path, record_answer
from fashion.digests import file_sha256
from fashion.errors import PipelineError
from fashion.params import PARAMS_FILE, load_params
from fashion.serving.decision import REVIEW, UNFAMILIAR
from fashion.serving.responses import STATIC_DIR, error

NEEDED = ("path", "label", "probability", "decision", "top3", "box", "error")
BOX_SIDES = ("top", "bottom", "left", "right")
BAD_BODY = 'send a JSON body {"path": "<a queued photo\'s path>", "label": "<a class>", "no_neckline" or "not_garment"}'


def parse_top3(cell):
    """"v_neck:0.5100;henley:0.3000" -> [["v_neck", 0.51], ["henley", 0.3]] (a class name may hold a colon)."""
    pairs = [part.rsplit(":", 1) for part in cell.split(";") if part]
    return [[label, float(p)] for label, p in pairs]


def parse_box(cell):
    return dict(zip(BOX_SIDES, map(float, cell.split(":")))) if cell else None


class ReviewQueue:
    """tags_path: the tag command's CSV; labels_path: the labels file (data.confirmed); classes: the served
    model's, which a person picks from."""

    def __init__(self, tags_path, labels_path, classes):
        self.tags_path, self.labels_path, self.classes = Path(tags_path), Path(labels_path), list(classes)

    @property
    def answers(self):
        """What a person may answer: a class, or one of NOT_A_CLASS."""
        return [*self.classes, *NOT_A_CLASS]

    def rows(self):
        """The tag CSV's rows ([] before a tag run); a clear error for a CSV the tag command did not write."""
        if not self.tags_path.is_file():
            return []
        with open(self.tags_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in NEEDED if column not in (reader.fieldnames or [])]
            if missing:
                raise PipelineError(f"{self.tags_path} has no column(s) {', '.join(missing)}: it is not a CSV of "
                                    "`python -m stages.tag`; tag the folder again")
            return list(reader)

    def queued(self):
        """The rows to review, most uncertain first: `review` by rising top probability, then `unfamiliar`."""
        rows = [row for row in self.rows() if row["decision"] in (REVIEW, UNFAMILIAR) and not row["error"]]
        return sorted(rows, key=lambda row: (row["decision"] != REVIEW, float(row["probability"]), row["path"]))

    def listing(self):
        answered = answers_by_path(self.labels_path)
        items = [{"path": row["path"], "label": row["label"], "probability": float(row["probability"]),
                  "decision": row["decision"], "top3": parse_top3(row["top3"]), "box": parse_box(row["box"]),
                  "located": row.get("located") or None, "locator": row.get("locator") or None,
                  "view": row.get("view") or None, "answer": answered.get(row["path"])} for row in self.queued()]
        return {"tags_file": str(self.tags_path), "found": self.tags_path.is_file(),
                "labels_file": str(self.labels_path), "classes": self.classes, "not_a_class": NOT_A_CLASS,
                "answered": sum(item["answer"] is not None for item in items), "items": items}

    def photo(self, path):
        """The file of a queued photo; None for a path the queue does not list (no other file is served)."""
        if not any(row["path"] == path for row in self.queued()):
            return None
        file = Path(path)
        return file if file.is_file() else None

    def answer(self, path, label):
        """Record the answer; an error message (str) for a photo not queued or an answer not offered."""
        if label not in self.answers:
            return f"label is {label!r}; send one of {', '.join(self.answers)}"
        file = self.photo(path)
        if file is None:
            return (f"{path!r} is not a photo of the queue ({self.tags_path}: its review and unfamiliar rows, "
                    "files still there); GET /queue/items lists them")
        record_answer(self.labels_path, path, label, file_sha256(file))
        return None


def queue_from_params(tags_path, classes):
    """The queue of this repository: its answers go into data.confirmed (confirmed.csv where unset)."""
    labels = (load_params().data.confirmed if Path(PARAMS_FILE).is_file() else None) or "confirmed.csv"
    return ReviewQueue(tags_path, labels, classes)


class Answer(BaseModel):
    path: str
    label: str


def queue_routes(queue):
    """/queue (the page), /queue/items, /queue/photo and /queue/answer; a 404 without a queue."""
    router = APIRouter()
    absent = "no review queue: the server was started without one"

    @router.get("/queue", include_in_schema=False)
    async def queue_page():
        return FileResponse(STATIC_DIR / "queue.html")

    @router.get("/queue/items", summary="The tag run's photos to review, most uncertain first, with answers so far")
    def items():
        if queue is None:
            return error(404, absent)
        try:
            return queue.listing()
        except PipelineError as err:
            return error(409, str(err))

    @router.get("/queue/photo", summary="The photo of one queued item (its path as the tag CSV gives it)")
    def queued_photo(path: str):
        file = queue.photo(path) if queue is not None else None
        if file is None:
            return error(404, f"{path!r} is not a photo of the review queue; GET /queue/items lists them")
        return FileResponse(file)

    @router.post("/queue/answer", summary="Label a queued photo: rewrites the labels file (data.confirmed)")
    def answer(answer: Answer):  # plain def: the file lock waits on a worker thread, not the event loop
        if queue is None:
            return error(404, absent)
        problem = queue.answer(answer.path, answer.label)
        if problem is not None:
            return error(400 if problem.startswith("label is") else 404, problem)
        return {"path": answer.path, "label": answer.label, "labels_file": str(queue.labels_path)}

    return router
