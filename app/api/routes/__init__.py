"""One module per endpoint group; each stays thin."""
