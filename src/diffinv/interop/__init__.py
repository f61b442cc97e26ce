"""Bridges to other libraries (imported on demand: ``from diffinv.interop import deepinv``)."""
