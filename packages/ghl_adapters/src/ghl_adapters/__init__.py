"""ghl_adapters."""
