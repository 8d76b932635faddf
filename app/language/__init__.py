"""nabla's expression language: text -> syntax tree -> SymPy tree, and back to text and LaTeX;
the catalog (``catalog/``) declares each of its functions once.

Nothing here imports FastAPI or JAX transforms; errors are those of ``app.errors``.
"""
