"""Choosing a built-in problem's prior by name or path (``reconstruct --problem X --prior P``).

A demo builder that takes a ``prior`` argument resolves a string that is not one of its own
keywords (``"auto"``, ``"gaussian"``, ...) with :func:`prior_for_problem`: a shipped prior's
name or a checkpoint path is loaded (:func:`diffinv.priors.load`) and checked against the
problem before anything is sampled:

* channels and size limits: :func:`diffinv.priors.base.shape_mismatch` (a size-agnostic
  prior accepts ``(channels, H, W)`` within its ``min_size``/``max_size``);
* units: a prior that states its ``units`` (the learned priors do) must name one of the
  problem's accepted unit words (e.g. ``"attenuation"`` for CT), so that a grey-level
  natural-image prior is not silently used on attenuation images in 1/mm.

A callable is returned as given (the Python API trusts the caller).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..priors.base import shape_mismatch

__all__ = ["prior_for_problem", "check_prior_fits", "first_shipped", "load_named"]


def first_shipped(names: Sequence[str]) -> str:
    """The first of ``names`` that is a shipped prior (``ValueError`` if none is)."""
    from ..priors import list_shipped

    shipped = {card["name"] for card in list_shipped()}
    for name in names:
        if name in shipped:
            return name
    raise ValueError(f"prior: none of the shipped priors {list(names)} is installed")


def check_prior_fits(prior: object, label: str, problem: str, image_shape: tuple[int, ...],
                     units: Sequence[str], units_text: str) -> None:
    """Raise ``ValueError`` naming ``label`` when ``prior`` does not fit the problem.

    Parameters
    ----------
    prior : callable
        The denoiser (its ``channels``/``min_size``/``max_size`` or ``event_shape`` and its
        ``units`` attribute, when present, are checked).
    label : str
        How the user named the prior (name or path), for the message.
    problem : str
        The problem's name, for the message.
    image_shape : tuple of int
        ``(channels, H, W)`` of the problem's images.
    units : sequence of str
        Words one of which the prior's ``units`` must contain (case-insensitive).
    units_text : str
        The problem's units in words, for the message.
    """
    why = shape_mismatch(prior, image_shape)
    if why is not None:
        raise ValueError(f"prior: {label!r} does not fit problem {problem!r}: {why}")
    prior_units = getattr(prior, "units", None)
    if prior_units and not any(w.lower() in str(prior_units).lower() for w in units):
        raise ValueError(
            f"prior: {label!r} is a prior of images in {prior_units!r}; problem {problem!r} "
            f"reconstructs {units_text} (expected units mentioning one of {list(units)})"
        )


def load_named(spec: str, argument: str = "prior"):
    """Load a shipped prior name or ``.pt`` path; an unknown name or a missing file raises
    ``ValueError`` naming ``argument`` (a bad argument, not a missing file of ours)."""
    from ..priors import load

    try:
        return load(spec)
    except FileNotFoundError as err:
        raise ValueError(f"{argument}: {str(err).removeprefix('name: ')}") from None


def prior_for_problem(spec: str | Callable, problem: str, image_shape: tuple[int, ...],
                      units: Sequence[str], units_text: str) -> Callable:
    """Load ``spec`` (shipped name or ``.pt`` path) and check that it fits the problem.

    Returns the prior; a callable ``spec`` is returned unchanged.  Raises ``ValueError``
    (naming ``prior``) for an unknown name or a missing file, and when the channels, size
    limits or units do not fit (:func:`check_prior_fits`); a damaged checkpoint raises the
    loader's error.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"prior: expected a shipped prior name or a file path, got {spec!r}")
    prior = load_named(spec)
    check_prior_fits(prior, spec, problem, tuple(image_shape), units, units_text)
    return prior
