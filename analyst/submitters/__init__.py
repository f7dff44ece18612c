"""Submitting hosts: each print server or workstation has its own revocable credential for POST /api/v1/jobs."""
