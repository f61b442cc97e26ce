"""Shared file plumbing: atomic writes and JSON conversion.

Used by every layer that writes files (posteriors, checkpoints, readers' writers, reports), so
it depends on nothing else in the package.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["atomic_write", "jsonable", "current_umask", "FileFormatError", "reading", "reader"]


class FileFormatError(ValueError):
    """A file is empty, truncated, damaged or of the wrong kind (the message names it)."""


#: errors raised by h5py, astropy, numpy, json, pickle and torch.load on bad file contents
_FORMAT_ERRORS = (
    OSError, KeyError, ValueError, TypeError, IndexError, EOFError, RuntimeError,
    AttributeError, UnicodeDecodeError, pickle.UnpicklingError, zipfile.BadZipFile,
)
_OWN_MESSAGE = re.compile(r"^[A-Za-z_][\w.\-]*: ")


@contextmanager
def reading(path: str | os.PathLike, kind: str) -> Iterator[None]:
    """Turn the low-level errors of reading ``path`` into a :class:`FileFormatError`.

    Errors that already say what is wrong in this package's style (``"name: ..."``),
    :class:`FileNotFoundError` and :class:`PermissionError` pass through unchanged; h5py,
    astropy, NumPy reshape, JSON, pickle and ``torch.load`` errors are re-raised as
    ``FileFormatError("{path}: not a valid {kind} file ...")`` chained to the original.
    """
    try:
        yield
    except (FileNotFoundError, PermissionError, IsADirectoryError, FileFormatError):
        raise
    except _FORMAT_ERRORS as err:
        if type(err) is ValueError and _OWN_MESSAGE.match(str(err)):
            if str(err).startswith("path: "):  # a reader's own finding about the file
                raise FileFormatError(str(err)) from err
            raise
        detail = str(err).strip() or "no detail"
        raise FileFormatError(
            f"{str(path)!r}: not a valid {kind} file, or it is empty, truncated or damaged "
            f"({type(err).__name__}: {detail})"
        ) from err


def reader(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a reader ``fn(path, ...)`` so that bad file contents raise a clear
    :class:`FileFormatError` naming the file (see :func:`reading`)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            with reading(path, kind):
                return fn(path, *args, **kwargs)

        return wrapper

    return deco


def current_umask() -> int:
    """The process's file-creation mask (read without changing it where ``/proc`` allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Any, suffix: str = "") -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path`` atomically.

    An interrupted write leaves no file under the final name (the temporary file is removed;
    a killed process leaves a hidden ``.NAME.*.tmp`` file, which
    :func:`diffinv.outdir.prepare_output_dir` cleans up).  The file gets the permissions of a
    normally created file (``0o666`` less the umask), not ``mkstemp``'s ``0o600``.
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise FileNotFoundError(f"path: directory {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # a writer may have recreated the file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def jsonable(value: Any) -> Any:
    """Convert tensors, arrays, NumPy scalars, non-finite floats and complex numbers (nested in
    dicts, lists and tuples) into values :func:`json.dumps` accepts; non-finite floats become
    strings (``"nan"``, ``"inf"``) so that JSON stays standard."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, complex):
        return [value.real, value.imag]
    return value
