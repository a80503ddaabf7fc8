"""ghl_http."""
