"""A simulated network printer: raw 9100 sink that records every job, and an SNMP agent with settable faults."""
