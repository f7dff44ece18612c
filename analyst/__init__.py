"""The analyst: the central registry of users, printers, collectors, jobs and their copies, prints and events."""
