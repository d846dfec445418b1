"""Tests of the feature store on SQLite and PostgreSQL."""
