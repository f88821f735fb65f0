"""The HTTP servers: the tracking server (api), the web UI (ui) and model scoring."""
