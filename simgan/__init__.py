"""SimGAN: Simulated+Unsupervised learning (Shrivastava et al., CVPR 2017).

Glossary (paper symbol -> name in this code):
    R_θ            refiner              (simgan.nn.refiner.Refiner)
    D_φ            discriminator        (simgan.nn.discriminator.Discriminator)
    x, x̃ = R_θ(x)  synthetic, refined
    y              real
    λ              self_reg_weight
    ψ              self_reg_feature     (identity, channel_mean, gradients)
    (not in paper) self_reg_level_weight (α: ψ = [∂x, ∂y, α·x] with gradients)
    (not in paper) self_reg_cap         (τ: a pixel's change costs at most τ; depth dropouts)
    (not in paper) noise_channels       (z: noise maps beside the refiner's input)
    (not in paper) hole_output          (a per-pixel "no reading" logit, sampled: depth sensor holes)
    (not in paper) refiner_ema_decay    (d: refine with a moving average of θ, θ̄ ← d·θ̄ + (1 − d)·θ)
    B, b           history_capacity, batch_size
    K_g, K_d       refiner_steps_per_round, discriminator_steps_per_round
    T              adversarial_rounds

The core imports torch, numpy, PIL and tqdm only; Prefect, DVC, BentoML and Great Expectations
live in the stages, flows and service that call it.
"""

__version__ = "0.1.0"
