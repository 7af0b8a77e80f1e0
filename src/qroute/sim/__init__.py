"""qroute.sim."""
