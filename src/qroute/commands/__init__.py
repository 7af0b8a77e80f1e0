"""Command groups of the `qroute` CLI; each module has `register(app)`."""
