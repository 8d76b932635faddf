"""nabla's expression language: text -> syntax tree -> SymPy tree, and back to text and LaTeX.

Nothing here imports FastAPI or JAX transforms; errors are those of ``app.errors``.
"""
