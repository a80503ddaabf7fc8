"""Contact imports outside a request: the runner the API's job and the CLI share, and the job kind."""
