"""qroute.worker."""
