"""The file store: MLflow's `mlruns/` layout (store.py) over crash-safe file writes (disk.py)."""
