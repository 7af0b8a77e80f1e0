"""qroute.observability."""
