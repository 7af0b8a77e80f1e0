"""qroute.providers."""
