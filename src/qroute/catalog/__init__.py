"""qroute.catalog."""
