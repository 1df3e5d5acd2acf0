"""Training: Algorithm 1 (refiner.py) and checkpoints (checkpoint.py)."""
