"""Running the service: structured logs, Prometheus metrics, the production server."""
