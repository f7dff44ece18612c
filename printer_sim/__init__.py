"""Simulated network printers for tests, the demo and load tests: raw 9100 sinks and an SNMP agent."""
