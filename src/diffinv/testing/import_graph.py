"""Static check of the package's layering: which modules import which.

The layers flow one way: ``operators -> (priors | solvers) -> sampling -> demos / cli``.
:func:`layer_violations` parses every module of a source tree (without importing it) and lists
the imports that break the rules below; the test suite asserts the list is empty.

Rules
-----
* nothing under ``operators/``, ``priors/`` or ``datasets/`` imports ``solvers``;
* nothing under ``operators/`` imports ``priors``;
* nothing under ``solvers/`` imports ``priors`` (priors and solvers are siblings);
* nothing under ``operators/``, ``priors/``, ``solvers/`` or ``datasets/`` imports the top
  layers (``sampling``, ``demos``, ``cli``, ``study``, ``report``);
* no module imports another module's underscore (private) name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Violation", "imports_of", "layer_violations"]

_TOP = ("sampling", "thread_probe", "demos", "cli", "study", "report", "data_problems")
_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "operators": ("solvers", "priors", *_TOP),
    "priors": ("solvers", *_TOP),
    "datasets": ("solvers", *_TOP),
    "solvers": ("priors", *_TOP),
}


@dataclass(frozen=True)
class Violation:
    """One import that breaks a rule: ``module`` imports ``target`` (``name`` if a private
    name), at ``line``."""

    module: str
    target: str
    name: str | None
    line: int
    rule: str

    def __str__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        return f"{self.module}:{self.line} imports {what} ({self.rule})"


def _module_name(path: Path, root: Path, package: str) -> tuple[str, bool]:
    rel = path.relative_to(root).with_suffix("")
    parts = [package, *rel.parts]
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def imports_of(path: Path, module: str, is_package: bool) -> list[tuple[str, str | None, int]]:
    """``(absolute target module, imported name or None, line)`` for every import in
    ``path``; relative imports are resolved against ``module``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    base = module.split(".") if is_package else module.split(".")[:-1]
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, None, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                out.append((target, a.name, node.lineno))
    return out


def layer_violations(root: str | Path, package: str = "diffinv") -> list[Violation]:
    """Check every ``*.py`` file under ``root`` (the package directory, e.g.
    ``src/diffinv``) and return the imports that break the layering rules."""
    root = Path(root)
    modules = {}
    for path in sorted(root.rglob("*.py")):
        modules[path] = _module_name(path, root, package)
    known = {name for name, _ in modules.values()}
    found: list[Violation] = []
    for path, (module, is_pkg) in modules.items():
        parts = module.split(".")
        layer = parts[1] if len(parts) > 1 else ""
        for target, name, line in imports_of(path, module, is_pkg):
            tparts = target.split(".")
            if tparts[0] != package:
                continue
            tlayer = tparts[1] if len(tparts) > 1 else ""
            if name and target == package and f"{package}.{name}" in known:
                tlayer = name  # ``from diffinv import solvers``
            if tlayer in _FORBIDDEN.get(layer, ()):
                found.append(Violation(module, target, None, line, f"{layer} -> {tlayer}"))
            if (
                name
                and name.startswith("_")
                and not name.startswith("__")
                and target != module
                and f"{target}.{name}" not in known
            ):
                found.append(Violation(module, target, name, line, "private name"))
    return found
