"""Gunicorn and Flask plumbing both HTTP services share: peer identity over mutual TLS, role checks,
a redacted access log."""
