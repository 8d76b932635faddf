"""Expression text -> SymPy tree (``parser``) -> JAX function (``compiler``).

Nothing here imports FastAPI; errors are those of ``app.errors``.
"""
