"""ASGI middleware for the HTTP shell."""
