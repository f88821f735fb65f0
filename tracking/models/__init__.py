"""Models: MLmodel packaging, the pyfunc interface and the flavors (sklearn, ...)."""
