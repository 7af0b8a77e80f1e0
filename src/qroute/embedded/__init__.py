"""qroute.embedded."""
