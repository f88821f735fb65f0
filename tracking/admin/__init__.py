"""Administration of stores: gc (delete for good), migrate (copy between stores),
reconcile (end runs that dead processes left RUNNING)."""
