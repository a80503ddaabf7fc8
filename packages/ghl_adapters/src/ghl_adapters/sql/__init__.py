"""SQL adapters: PostgreSQL through SQLAlchemy and psycopg, and the embedded server for laptops."""
