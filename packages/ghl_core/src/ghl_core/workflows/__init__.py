"""Workflow automation: definitions, waits, conditions and split tests (the pure core of the engine)."""
