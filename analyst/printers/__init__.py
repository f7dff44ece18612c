"""Printers: where they are, how to reach them, how to watch their health."""
