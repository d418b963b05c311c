"""The SQLite outbox: its connection, tables, claims and admin, its SQL in one place.

``store.SqliteOutbox`` is imported where it is opened (nothing here imports the store)."""
