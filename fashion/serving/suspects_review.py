"""The server's review of suspect labels (/review): the suspects stage's table, each suspect's photo under
data.path, and keep / exclude decisions, which go into the exclude file (fashion/data/exclusions.py:
rewritten atomically under a lock, so concurrent clicks never lose one)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel

from fashion.data.exclusions import DECISIONS, decisions, read_suspects, record_decision
from fashion.params import PARAMS_FILE, load_params
from fashion.paths import Paths
from fashion.serving.responses import STATIC_DIR, error

BAD_BODY = 'send a JSON body {"path": "<a suspect\'s path>", "decision": "exclude" or "keep"}'


class Review:
    """The table is read on every request: a `dvc repro` while the server runs shows at once."""

    def __init__(self, suspects_path, exclude_path, data_path):
        self.suspects_path, self.exclude_path, self.data_path = Path(suspects_path), Path(exclude_path), Path(data_path)

    def table(self):
        return read_suspects(self.suspects_path) if self.suspects_path.is_file() else []

    def listing(self):
        decided = decisions(self.exclude_path, self.data_path)
        return {"suspects_file": str(self.suspects_path), "found": self.suspects_path.is_file(),
                "exclude_file": str(self.exclude_path),
                "suspects": [{**row, "decision": decided.get(row["path"])} for row in self.table()]}

    def photo(self, path):
        """The photo file of a listed suspect; None for a path the table does not list (no other file is served)."""
        if not any(row["path"] == path for row in self.table()):
            return None
        file = self.data_path / path
        return file if file.is_file() else None

    def decide(self, path, decision):
        """Record the decision; False for a path the table does not list."""
        if not any(row["path"] == path for row in self.table()):
            return False
        record_decision(self.exclude_path, path, decision)
        return True


def review_from_params(suspects_path=Paths().suspects):
    """The review of this repository: data.path and data.exclude from params.yaml (exclude.txt where unset)."""
    if not Path(PARAMS_FILE).is_file():
        return Review(suspects_path, "exclude.txt", "data/synthetic")
    data = load_params().data
    return Review(suspects_path, data.exclude or "exclude.txt", data.path)


class Decision(BaseModel):
    path: str
    decision: str


def review_routes(review):
    """/review (the page), /review/suspects, /review/photo and /review/decision; a 404 without a review."""
    router = APIRouter()

    @router.get("/review", include_in_schema=False)
    async def review_page():
        return FileResponse(STATIC_DIR / "review.html")

    @router.get("/review/suspects", summary="The suspect labels, worst first, each with the decision on it so far")
    async def suspects():
        if review is None:
            return error(404, "no review: the server was started without one")
        return review.listing()

    @router.get("/review/photo", summary="The photo of one listed suspect (path relative to data.path)")
    async def suspect_photo(path: str):
        file = review.photo(path) if review is not None else None
        if file is None:
            return error(404, f"{path!r} is not a suspect's photo under data.path; GET /review/suspects lists them")
        return FileResponse(file)

    @router.post("/review/decision", summary="Keep or exclude a suspect: rewrites the exclude file (data.exclude)")
    def decide(decision: Decision):  # plain def: the file lock waits on a worker thread, not the event loop
        if review is None:
            return error(404, "no review: the server was started without one")
        if decision.decision not in DECISIONS:
            return error(400, f"decision is {decision.decision!r}; send one of {', '.join(DECISIONS)}")
        if not review.decide(decision.path, decision.decision):
            return error(404, f"{decision.path!r} is not in {review.suspects_path}; only listed suspects are decided "
                              "here (edit the exclude file for others)")
        return {"path": decision.path, "decision": decision.decision, "exclude_file": str(review.exclude_path)}

    return router
