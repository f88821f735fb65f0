"""The REST store: a client of a tracking server (ours or MLflow's)."""
