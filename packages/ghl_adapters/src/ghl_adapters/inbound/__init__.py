"""Inbound webhook verifiers, one per provider, each wrapping the provider's own validator."""
