"""One request: its compile spec, its points as arrays, its evaluation and its response body
(``pipeline.Service.run`` reads as the list of steps)."""
