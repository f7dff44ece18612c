"""pullprint: a load-balanced pull-printing (secure release) cluster for Linux and CUPS."""

__version__ = "0.1.0"
