"""The benchmark scenarios, one module each: `cpu`, `throughput`, `ratelimit`."""
