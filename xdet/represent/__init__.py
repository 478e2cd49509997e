"""Representation analysis (paper §A.4): embeddings, language distances, silhouettes, the output folder."""
