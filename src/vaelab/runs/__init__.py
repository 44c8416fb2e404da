"""The run folder and what it holds: files, evaluations, checkpoints, provenance, the resolved config."""
