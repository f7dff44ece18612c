"""Collectors: membership and liveness from heartbeats, and the cache they keep for degraded mode."""
