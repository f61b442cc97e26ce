"""Output directories that lose nothing: checked, locked and replaced as a whole.

:func:`prepare_output_dir` is called before any expensive work (sampling) starts:

* an empty path is rejected, as are a file in the directory's place or a path under a file;
* the directory is created if needed and checked writable (a probe file is created);
* an exclusive ``fcntl.flock`` lock is taken on the directory itself, so a second run writing
  to the same directory fails at once instead of silently mixing or losing results;
* hidden ``.*.tmp`` files left behind by a killed run's atomic writes are removed;
* a directory that already holds results is refused unless ``overwrite=True``; with it, the
  previous results stay in place until the new ones are written, and
  :meth:`OutputDir.finish` then removes every previous result file the new run did not
  rewrite, so no stale figure (say ``truth.png`` of another problem) is left beside the new
  ones.

Only files known to be results (``known`` names, plus the ``files`` list recorded in a
previous ``summary.json``) are ever deleted; anything else in the directory is left alone.
POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from pathlib import Path

__all__ = ["OutputDir", "OutputDirError", "prepare_output_dir"]


class OutputDirError(ValueError):
    """The output directory cannot be used (message names it and says why)."""


class OutputDir:
    """A prepared, locked output directory (use as a context manager, or call :meth:`close`).

    Attributes
    ----------
    path : Path
        The directory.
    previous : list of str
        Result files found in it when it was prepared (to be replaced with ``overwrite``).
    created : bool
        Whether preparing it created the directory; such a directory is removed again on
        :meth:`close` if the run wrote nothing into it (a failed run leaves no trace).
    """

    def __init__(self, path: Path, fd: int, previous: list[str], created: bool = False):
        self.path = path
        self._fd: int | None = fd
        self.previous = previous
        self.created = created

    def finish(self, written: list[str]) -> list[str]:
        """Remove previous result files not in ``written``; return the removed names."""
        removed = []
        keep = set(written)
        for name in self.previous:
            if name in keep:
                continue
            try:
                (self.path / name).unlink()
                removed.append(name)
            except FileNotFoundError:
                pass
        self.previous = []
        return removed

    def close(self) -> None:
        """Release the lock (idempotent); remove the directory if this run created it and
        left it empty."""
        if self._fd is not None:
            if self.created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only succeeds when nothing was written
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _results_in(path: Path, known: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """``(result files, other visible entries)`` of a directory."""
    listed: set[str] = set(known)
    summary = path / "summary.json"
    if summary.is_file():
        try:
            files = json.loads(summary.read_text()).get("files", [])
            listed.update(str(f) for f in files if isinstance(f, str) and "/" not in f)
        except (OSError, ValueError, AttributeError):
            pass  # a damaged summary lists nothing; the known names still apply
    results, others = [], []
    for entry in sorted(os.listdir(path)):
        if entry.startswith("."):
            continue
        (results if entry in listed and (path / entry).is_file() else others).append(entry)
    return results, others


def _remove_stale_tmp(path: Path) -> list[str]:
    """Delete hidden ``.*.tmp`` files (atomic writes of a killed run); return their names."""
    removed = []
    for entry in os.listdir(path):
        if entry.startswith(".") and entry.endswith(".tmp") and (path / entry).is_file():
            try:
                (path / entry).unlink()
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def _make_dir(path: Path, name: str) -> None:
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{name}: {str(path)!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError) as err:
        raise OutputDirError(
            f"{name}: cannot create directory {str(path)!r}: a parent path is a file"
        ) from err
    except PermissionError as err:
        raise OutputDirError(
            f"{name}: cannot create directory {str(path)!r}: permission denied"
        ) from err
    except OSError as err:
        raise OutputDirError(f"{name}: cannot create directory {str(path)!r}: {err}") from err


def _probe_writable(path: Path, name: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".diffinv-probe.", suffix=".tmp", dir=path)
    except OSError as err:
        raise OutputDirError(
            f"{name}: directory {str(path)!r} is not writable ({err.strerror or err})"
        ) from err
    os.close(fd)
    os.unlink(probe)


def _lock(path: Path, name: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise OutputDirError(
                f"{name}: directory {str(path)!r} is in use by another diffinv run; wait for "
                "it to finish or choose another output directory"
            ) from err
        raise OutputDirError(f"{name}: cannot lock directory {str(path)!r}: {err}") from err
    return fd


def prepare_output_dir(
    path: str | os.PathLike,
    overwrite: bool = False,
    known: tuple[str, ...] = (),
    name: str = "--out",
) -> OutputDir:
    """Create, check, lock and clean the output directory ``path``.

    Parameters
    ----------
    path : str or path-like
        Output directory; created with its parents if missing.  ``''`` is rejected.
    overwrite : bool
        Accept a directory that already holds results; they are replaced by
        :meth:`OutputDir.finish`.
    known : tuple of str
        File names the caller writes (results); with the ``files`` list of an existing
        ``summary.json`` they define what counts as a previous result.
    name : str
        Argument name used in error messages.

    Returns
    -------
    OutputDir
        Holding the exclusive lock until closed.

    Raises
    ------
    OutputDirError
        (a ``ValueError``) for an empty path, a file in the way, an unwritable directory, a
        directory locked by another run, or previous results without ``overwrite``.
    """
    if not str(path).strip():
        raise OutputDirError(f"{name}: expected a directory path, got an empty string")
    p = Path(path)
    created = not p.exists()
    _make_dir(p, name)
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputDirError(f"{name}: directory {str(p)!r} is not writable")
    fd = _lock(p, name)
    try:
        _probe_writable(p, name)
        _remove_stale_tmp(p)
        results, others = _results_in(p, known)
        if (results or others) and not overwrite:
            shown = ", ".join((results + others)[:5])
            raise OutputDirError(
                f"{name}: directory {str(p)!r} is not empty ({shown}); pass --overwrite to "
                "replace its results, or choose another directory"
            )
    except BaseException:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        raise
    return OutputDir(p, fd, results, created)
