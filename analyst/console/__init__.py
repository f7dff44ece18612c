"""The operators' console: one HTML page of collectors, printers, job counts and events; printer service state."""
