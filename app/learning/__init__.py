"""The answers that explain rather than compute: symbolic derivatives, the computational
graph with its cost, and plots."""
