"""Built-in demonstration problems (``diffinv reconstruct --problem NAME``)."""

from . import gaussian_field  # noqa: F401  (registers "gaussian-field")
from .ct import build_sparse_view as _ct  # noqa: F401  (registers "ct-sparse-view", "ct-tooth")
from .registry import Demo, available_demos, get_demo, register_demo

DEFAULT_DEMO = "gaussian-field"

__all__ = ["DEFAULT_DEMO", "Demo", "available_demos", "get_demo", "register_demo"]
