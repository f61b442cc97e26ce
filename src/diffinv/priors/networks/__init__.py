"""Denoising networks for learned priors."""
