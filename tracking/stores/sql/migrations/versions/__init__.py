"""Alembic revision scripts of the SQL store."""
