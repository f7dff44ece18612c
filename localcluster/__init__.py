"""A whole pullprint cluster on one machine, on loopback: the demo, the end-to-end tests and the fault suite.

It sits above every part (it starts Redis, the analyst, collectors, HAProxy, printer simulators
and a workstation cupsd), so nothing in a part imports it.
"""
