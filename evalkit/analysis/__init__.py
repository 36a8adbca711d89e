"""Analyses over finished run logs (reports, comparisons, scaling predictions)."""
