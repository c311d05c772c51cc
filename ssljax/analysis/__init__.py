"""Analyses of representations and data, on arrays (no training objects)."""
