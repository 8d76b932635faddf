"""Programs and their execution: the XLA path, the first tier (jets), both behind one
``Tier`` interface; worker processes; the caches of executables and programs
(``app.engine.engine``)."""
