"""spikefab.boards."""
