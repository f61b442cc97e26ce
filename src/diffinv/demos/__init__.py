"""Built-in demonstration problems (``diffinv reconstruct --problem NAME``)."""

# importing a demo module registers its problems
from . import ct, eht, gaussian_field, mri, phase, realsize  # noqa: F401
from .registry import Demo, available_demos, get_demo, register_demo

DEFAULT_DEMO = "ct-sparse-view"

__all__ = ["DEFAULT_DEMO", "Demo", "available_demos", "get_demo", "register_demo"]
