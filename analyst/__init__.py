"""The analyst: the central registry of users, printers, collectors, jobs, copies and events."""
