"""HAProxy in front of the collectors: config rendering, validation and runtime control."""
