"""Synthetic data generators, file readers and result writers."""
