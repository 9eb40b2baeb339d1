"""Tasks: how to batch, what loss, which metrics. Each plugs into the one engine."""
