"""The `crmagento` command: the one place that puts the gateway, the workers and the sandboxes together."""
