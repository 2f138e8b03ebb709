"""Pure logic: the metric catalogue and checkpoint ranking. No I/O; never imports `api` or `mcp`."""
