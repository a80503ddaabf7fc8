"""ghl_cli."""
