"""Outbound webhooks: per-location subscriptions, signed deliveries (Standard Webhooks), retries and a
delivery log."""
