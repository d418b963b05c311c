"""The PostgreSQL outbox: its connection, tables, claims and admin, its SQL in one place.

``store.PostgresOutbox`` is imported where it is opened (psycopg only then)."""
