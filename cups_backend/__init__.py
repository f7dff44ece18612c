"""The program cupsd runs for each job on the shared queue: it streams the job to the collectors."""
