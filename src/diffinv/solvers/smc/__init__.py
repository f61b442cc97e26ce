"""Sequential Monte Carlo posterior samplers: the ``smc`` solver and its parts.

* :mod:`.runner` -- the registered ``smc`` solver: option checks and the choice of method.
* :mod:`.mcgdiff` / :mod:`.mcgdiff_tweedie` -- exact linear-Gaussian proposals (MCGdiff/FPS)
  with the midpoint or Tweedie backward kernel (:mod:`.tweedie_kernel`, :mod:`.shared_batch`).
* :mod:`.tds` -- the twisted diffusion sampler for general likelihoods, with
  :mod:`.tempering` (adaptive exponents by the conditional ESS) and :mod:`.rejuvenation`
  (MALA / pCN moves after resampling).
* :mod:`.tempered` -- likelihood-tempered SMC from exact prior draws, for priors with a
  density, with the HMC moves of :mod:`.informed_hmc` (a likelihood-informed metric).
* :mod:`.particles` / :mod:`.resampling` -- weights, ESS, resampling and denoiser batching.
* :mod:`.sqmc` -- Hilbert ordering of particles and randomised quasi-Monte Carlo move noise
  (SQMC), the variance reduction of the ``mcgdiff`` defaults.
"""

from .runner import smc

__all__ = ["smc"]
