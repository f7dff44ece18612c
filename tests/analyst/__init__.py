"""Tests of the analyst (central registry), on SQLite and PostgreSQL."""
