"""Pipelines with ordered stages, and the opportunities that move through them."""
