"""Tracked Prefect flows (see the Prefect integration issue); empty until then."""
