"""qroute.resilience."""
