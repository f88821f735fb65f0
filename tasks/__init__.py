"""Tracked Prefect tasks (see the Prefect integration issue); empty until then."""
