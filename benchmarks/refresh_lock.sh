#!/usr/bin/env bash
# Refresh the committed default run: dvc.lock and the small outputs kept in git (metrics/, plots/*/*.csv,
# and the .gitignore files DVC writes for its cached outputs). Run it in the repository with the default
# params.yaml after a change to a stage's code, dependencies or params; then commit. tests/test_lock.py
# fails until it has been run. Arguments go to `dvc repro` (e.g. -f to run every stage again).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git diff --quiet HEAD -- params.yaml; then
    echo "error: params.yaml differs from the committed one; the lock records the default run: commit or" \
         "revert params.yaml first" >&2
    exit 2
fi
dvc repro "$@"
# plots/ holds the committed CSVs and the .gitignore files that keep DVC's cached pictures out of git.
git add dvc.lock metrics plots data/.gitignore models/.gitignore
dvc status
echo "dvc.lock and the metrics are staged: review with 'git diff --cached --stat', then commit"
