"""spikefab.host."""
