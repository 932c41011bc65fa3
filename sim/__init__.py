"""spikefab.sim."""
