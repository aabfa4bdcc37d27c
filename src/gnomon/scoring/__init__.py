"""Scoring as pure functions: per-sample metrics, answer extraction, and aggregation into scores
with intervals. Nothing here reads or writes the store, so a scorer can run anywhere."""
