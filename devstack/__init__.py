"""Tools that run the platform on one machine: the `landfall` CLI, the local stack, the burst
harness and progress views. Nothing deployed imports this package."""
