"""Programs and their execution: the XLA path, the first tier (jets), worker processes and
the executable cache."""
