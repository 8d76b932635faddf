"""Request, response and problem models of the public API (imports nothing from app/)."""
