"""Which reader reads a file: the layouts, their detection, and the expansion of path arguments.

Layouts (``layout=`` of :func:`skydask.images.open_stack`):

* ``"lsst"`` — LSST Exposure (calexp): image, mask, variance HDUs (:mod:`.read_lsst`);
* ``"decam_cp"`` — DECam community pipeline ``_ooi_`` image with its ``_oow_`` weight and
  ``_ood_`` mask files (:mod:`.read_decam`);
* ``"fits"`` — a plain image with a WCS (:mod:`.read_fits`);
* ``"auto"`` — per file: ``decam_cp`` for an ``_ooi_`` name, ``lsst`` when the HDUs have the
  Exposure's planes, else ``fits``.

Path arguments: a file, a glob pattern, a directory (its ``*.fits``, ``*.fits.fz`` and ``*.fit``
files) or a list of these. CP weight and mask files are dropped from the list, since they are
read with their image; a gzipped file must be named explicitly (it cannot be memory-mapped).
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from astropy.io import fits

from skydask.errors import CatalogReadError, SpecError
from skydask.images.metadata import VisitMeta
from skydask.images.read_decam import is_cp_companion, is_cp_image, scan_decam_cp
from skydask.images.read_fits import scan_fits
from skydask.images.read_lsst import is_lsst_exposure, scan_lsst
from skydask.images.source import VisitSource

__all__ = ["LAYOUTS", "expand_paths", "scan_file"]

Scanner = Callable[[str, fits.HDUList], list[tuple[VisitMeta, VisitSource]]]
LAYOUTS: dict[str, Scanner] = {"lsst": scan_lsst, "decam_cp": scan_decam_cp, "fits": scan_fits}
_DIR_PATTERNS = ("*.fits", "*.fits.fz", "*.fit")


def expand_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The image files named by ``paths`` (see the module docstring), sorted, without duplicates.

    Raises
    ------
    CatalogReadError
        If a named file does not exist, or nothing matches at all.
    """
    items: Sequence[Any] = [paths] if isinstance(paths, (str, os.PathLike)) else paths
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted({str(p) for pat in _DIR_PATTERNS for p in path.glob(pat)})
        elif glob.has_magic(text):
            found = sorted(glob.glob(os.path.expanduser(text)))
        elif path.exists():
            found = [str(path)]
        else:
            raise CatalogReadError(f"image file {text} does not exist")
        out.extend(f for f in found if not is_cp_companion(f))
    if not out:
        raise CatalogReadError(f"no image files match {paths!r}")
    return sorted(dict.fromkeys(os.path.abspath(p) for p in out))


def _detect(path: str, hdul: fits.HDUList) -> str:
    if is_cp_image(path):
        return "decam_cp"
    if is_lsst_exposure(hdul):
        return "lsst"
    return "fits"


def scan_file(path: str, layout: str = "auto") -> list[tuple[VisitMeta, VisitSource]]:
    """Read the headers of one file: the visits it holds, with their metadata and planes.

    Raises
    ------
    CatalogReadError
        If the file cannot be opened as FITS, is truncated, has no WCS, or does not fit the
        layout.
    SpecError
        If ``layout`` is not one of ``"auto"`` and :data:`LAYOUTS`.
    """
    if layout != "auto" and layout not in LAYOUTS:
        raise SpecError(
            f"parameter 'layout' must be 'auto' or one of {sorted(LAYOUTS)}; got {layout!r}"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
        except (OSError, ValueError) as exc:
            raise CatalogReadError(f"cannot read {path} as FITS: {exc}") from exc
    truncated = [str(w.message) for w in caught if "truncated" in str(w.message).lower()]
    if truncated:
        hdul.close()
        # astropy only warns, and would hand back the HDUs that survived
        raise CatalogReadError(f"{path} is truncated: {truncated[0]}")
    with hdul:
        kind = _detect(path, hdul) if layout == "auto" else layout
        try:
            return LAYOUTS[kind](path, hdul)
        except CatalogReadError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CatalogReadError(f"cannot read {path} as layout {kind!r}: {exc}") from exc
