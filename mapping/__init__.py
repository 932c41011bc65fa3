"""spikefab.mapping."""
