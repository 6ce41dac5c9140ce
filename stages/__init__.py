"""The pipeline's stage scripts: one per dvc.yaml stage, plus the predict and serve commands. Each reads
params.yaml, calls the library (the fashion package) and writes its outputs where fashion.paths.Paths says."""
