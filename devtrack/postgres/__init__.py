"""The PostgreSQL backend: a store with the same interface as ``store.Store`` (psycopg 3)."""
