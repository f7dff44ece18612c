"""The operators' console: one read-only HTML page of collectors, printers, job counts and recent events."""
