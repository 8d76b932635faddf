"""The HTTP edge: routes, middleware (body size, concurrency, memo, observability), transport
and problem+json. Never imports ``jax``; calls ``app.service`` for the work."""
