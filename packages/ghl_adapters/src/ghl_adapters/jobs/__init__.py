"""The job engine: procrastinate on the platform's PostgreSQL behind the core's `JobQueue` port."""
