"""Built-in demonstration problems (``diffinv reconstruct --problem NAME``)."""

from . import eht  # noqa: F401, I001  (registers "eht-crescent", "eht-m87")
from . import gaussian_field  # noqa: F401  (registers "gaussian-field")
from .registry import Demo, available_demos, get_demo, register_demo

DEFAULT_DEMO = "gaussian-field"

__all__ = ["DEFAULT_DEMO", "Demo", "available_demos", "get_demo", "register_demo"]
