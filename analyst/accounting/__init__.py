"""Accounting: one row per printed job, and the page reports built from those rows."""
