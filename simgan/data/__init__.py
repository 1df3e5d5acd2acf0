"""Data: the single preprocessing path (transforms) and the built-in demo images."""
