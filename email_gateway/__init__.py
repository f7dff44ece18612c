"""Email to print: an SMTP listener that holds each part of a mail to the pull-print address as a job.

`server` speaks SMTP (aiosmtpd, STARTTLS required), `message` turns a mail into printable parts,
`submit` hands each part to the cluster like a print server does (through the load balancer, with
this gateway's own submitting-host credential; the collector asks the analyst whose the sender's
address is), `reply` tells the sender what is held and what was refused. docs/email.md.
"""
