"""One request: its compile spec, its points as arrays, its evaluation and its response body."""
