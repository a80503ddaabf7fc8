"""Workflow jobs: the events consumer and the enrollment runner."""
