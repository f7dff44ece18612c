"""Events: the append-only log of everything that happened to users, jobs and printers."""
