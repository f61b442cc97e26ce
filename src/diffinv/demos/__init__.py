"""Built-in demonstration problems (``diffinv reconstruct --problem NAME``)."""

from . import gaussian_field  # noqa: F401  (registers "gaussian-field")
from . import mri as _mri  # noqa: F401  (registers "mri-multicoil")
from .registry import Demo, available_demos, get_demo, register_demo

DEFAULT_DEMO = "gaussian-field"

__all__ = ["DEFAULT_DEMO", "Demo", "available_demos", "get_demo", "register_demo"]
