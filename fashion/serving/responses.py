"""What every part of the server answers with: its static files, and errors as {"detail": ...}."""

from pathlib import Path

from fastapi.responses import JSONResponse

STATIC_DIR = Path(__file__).with_name("static")  # the pages, their scripts and style


def error(status, detail, headers=None, **extra):
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)
