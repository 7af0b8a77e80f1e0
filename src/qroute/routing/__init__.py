"""qroute.routing."""
