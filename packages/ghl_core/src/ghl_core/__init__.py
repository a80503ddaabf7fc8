"""ghl_core."""
