"""Built-in demonstration problems (``diffinv reconstruct --problem NAME``)."""

# importing a demo module registers its problems
from . import gaussian_field, phase  # noqa: F401
from .registry import Demo, available_demos, get_demo, register_demo

DEFAULT_DEMO = "gaussian-field"

__all__ = ["DEFAULT_DEMO", "Demo", "available_demos", "get_demo", "register_demo"]
