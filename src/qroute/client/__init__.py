"""qroute.client."""
