"""Regenerated tables: build (+ bootstrap), render, the output folder, the comparison with the paper."""
