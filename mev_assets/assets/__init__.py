"""Thin Dagster assets: load inputs, call core/, return frames with metadata."""
