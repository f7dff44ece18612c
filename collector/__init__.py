"""The collector node: job intake, encrypted spool, replication, terminal sessions, release, printer output."""
