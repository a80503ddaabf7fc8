"""Inbound webhooks: one receiving path for every provider's callbacks (verify, store, answer, process)."""
