"""spikefab.examples."""
