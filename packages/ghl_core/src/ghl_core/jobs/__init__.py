"""Background work: what the core asks the job engine to run after a commit."""
