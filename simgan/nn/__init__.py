"""Networks: the refiner R_θ and the discriminators D_φ (paper §3.1 and §3.2 implementation details)."""
