"""The SHA-256 of a file's bytes (what `sha256sum` prints): the one copy every module uses."""

import hashlib


def file_sha256(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
