"""The SQL store (SQLite, PostgreSQL): store.py, the schema, search compiled to SQL, migrations."""
