"""The depth map's position-to-pixel step against hpgeom itself, bit for bit.

``nested_pixels`` must give ``hpgeom.angle_to_pixel(nside, ra, dec, nest=True,
lonlat=True)`` for every row: random points over the sky and in compact boxes (the table
route) at many resolutions, points on pixel edges and corners (hpgeom's own boundary
points) and nudged off them by one unit in the last place and by 1e-12 to 1e-7 degrees,
points where ``a -+ b`` is an integer, the equatorial zone's border (|sin dec| = 2/3), the
poles and ``ra`` 0/360.
"""

from __future__ import annotations

import itertools
import math

import hpgeom
import numpy as np
import pandas as pd
import pytest

from skydask.analyses.depthmap.kernels import edge_lines_to_nested, fill_slots
from skydask.analyses.depthmap.pixels import pixel_index
from skydask.analyses.depthmap.positions import (
    chunked_pixel_codes,
    nested_pixel_codes,
    nested_pixels,
    piece_bounds,
)

NSIDES = [1, 2, 16, 256, 1024, 4096, 2**16, 2**20, 2**29]
ZONE_DEC = math.degrees(math.asin(2.0 / 3.0))


def truth(nside: int, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    return np.asarray(hpgeom.angle_to_pixel(nside, ra, dec, nest=True, lonlat=True))


def check(nside: int, ra: np.ndarray, dec: np.ndarray) -> None:
    """Pixels, and coded pixels (codes ordered as the pixels), equal hpgeom's."""
    ra, dec = np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)
    want = truth(nside, ra, dec)
    codes, coded = nested_pixel_codes(nside, ra, dec)
    if coded is not None:
        assert np.all(np.diff(coded) > 0)
        assert np.array_equal(coded[codes], want)
    got = nested_pixels(nside, ra, dec)
    wrong = np.flatnonzero(got != want)
    assert not len(wrong), (
        f"nside {nside}: {len(wrong)} of {len(ra)} rows differ, e.g. ra={ra[wrong[0]]!r} "
        f"dec={dec[wrong[0]]!r}: {got[wrong[0]]} != {want[wrong[0]]}"
    )


def nudged(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points, one ulp either way in each coordinate, and 1e-12..1e-7 deg away."""
    ras, decs = [ra], [dec]
    for direction in (-np.inf, np.inf):
        ras += [np.nextafter(ra, direction), ra]
        decs += [dec, np.nextafter(dec, direction)]
    for step in (1e-12, 1e-10, 1e-9, 1e-7):
        for sign in (-1, 1):
            ras += [ra + sign * step, ra]
            decs += [dec, dec + sign * step]
    r, d = np.concatenate(ras), np.concatenate(decs)
    keep = (r >= 0) & (r <= 360) & (np.abs(d) <= 90)
    return r[keep], d[keep]


@pytest.mark.parametrize("nside", NSIDES)
def test_random_sky(nside: int) -> None:
    rng = np.random.default_rng(nside % 1000)
    n = 200_000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    check(nside, ra, dec)


@pytest.mark.parametrize("nside", [64, 1024, 16384, 2**20])
@pytest.mark.parametrize(
    "box",
    [
        (55.0, 57.5, -40.0, -38.0),  # a DC2 tract
        (0.0, 2.0, -1.0, 1.0),  # ra 0 and the equator
        (358.0, 360.0, 30.0, 32.0),  # up to ra 360
        (44.0, 46.0, ZONE_DEC - 1, ZONE_DEC + 1),  # the zones' border
        (200.0, 201.0, -ZONE_DEC - 0.5, -ZONE_DEC + 0.5),
        (10.0, 100.0, -30.0, 30.0),  # wide: no table
        (0.0, 360.0, 85.0, 90.0),  # polar cap only
    ],
)
def test_compact_boxes(nside: int, box: tuple[float, float, float, float]) -> None:
    rng = np.random.default_rng(3)
    n = 300_000
    ra = rng.uniform(box[0], box[1], n)
    dec = rng.uniform(box[2], box[3], n)
    check(nside, ra, dec)


@pytest.mark.parametrize("nside", [1, 4, 64, 1024, 8192, 2**18])
def test_pixel_edges_and_corners(nside: int) -> None:
    """hpgeom's boundary points of 3 x 3 pixels in a tract, at the zones' border, at ra 0 and
    near a pole: each place alone (a compact box, coded through the table, the points on
    edges left to hpgeom and coded back), then all together."""
    ras, decs = [], []
    for ra0, dec0 in ((56.0, -39.0), (45.0, ZONE_DEC), (315.0, -ZONE_DEC), (0.0, 0.0), (0, 88)):
        centre = hpgeom.angle_to_pixel(nside, ra0, dec0, nest=True, lonlat=True)
        pixels = np.unique(
            np.concatenate([[centre], hpgeom.neighbors(nside, np.array([centre]), nest=True)[0]])
        )
        pixels = pixels[pixels >= 0]
        r, d = hpgeom.boundaries(nside, pixels, step=16, nest=True, lonlat=True)
        ras.append(np.ravel(r))
        decs.append(np.ravel(d))
        check(nside, *nudged(ras[-1], decs[-1]))  # one compact box: the coded table route
    ra, dec = nudged(np.concatenate(ras), np.concatenate(decs))
    check(nside, ra, dec)


@pytest.mark.parametrize("nside", [1, 2, 1024, 2**20])
def test_integer_edge_lines(nside: int) -> None:
    """Points where ``a - b`` or ``a + b`` is an integer in exact arithmetic: ra on the
    meridians ``90 k / nside - 45`` at the equator, and on the rings ``sin dec = 4 j / 3
    nside`` at ra 0 + 90/nside multiples, then nudged."""
    k = np.arange(0, 4 * nside + 1, max(1, nside // 256))
    ra_eq = 90.0 * (k + 0.5 * nside) / nside % 360.0
    j = np.arange(-(nside // 2), nside // 2 + 1, max(1, nside // 256))
    dec_ring = np.degrees(np.arcsin(np.clip(4.0 * j / (3.0 * nside), -1, 1)))
    ra = np.concatenate([ra_eq, np.full(len(dec_ring), 90.0 / nside)])
    dec = np.concatenate([np.zeros(len(ra_eq)), dec_ring])
    check(nside, *nudged(ra, dec))


def test_special_values() -> None:
    ra = np.array([0.0, 1e-300, 5e-7, 360.0, 359.9999999, 359.999999, 90.0, 180.0, 270.0, 45.0])
    for dec0 in (-90.0, -ZONE_DEC, -41.8, 0.0, 41.8, ZONE_DEC, 89.999999, 90.0):
        check(1024, ra, np.full(len(ra), dec0))
    check(1024, np.array([]), np.array([]))


def test_edge_lines_to_nested() -> None:
    """The integer part against hpgeom at the centres of equatorial edge-line cells."""
    for order in (0, 3, 10):
        nside = 1 << order
        jp, jm = np.meshgrid(np.arange(5 * nside), np.arange(5 * nside), indexing="ij")
        jp, jm = jp.ravel(), jm.ravel()
        a = (jp + jm + 1) / 2  # the cell centre: a - b = jp + 1/2, a + b = jm + 1/2
        b = (jm - jp) / 2
        tt = a / nside - 0.5
        z = b / (0.75 * nside)
        inside = (np.abs(z) < 2 / 3) & (tt >= 0) & (tt < 4)
        ra = tt[inside] * 90.0
        dec = np.degrees(np.arcsin(z[inside]))
        got = edge_lines_to_nested(order, jp[inside], jm[inside])
        assert np.array_equal(got, truth(nside, ra, dec))


def test_compact_partitions_are_coded() -> None:
    """A tract's rows come back coded (the table route), with hpgeom's pixels."""
    rng = np.random.default_rng(8)
    ra, dec = rng.uniform(56.0, 58.5, 100_000), rng.uniform(-40.0, -38.0, 100_000)
    codes, coded = nested_pixel_codes(1024, ra, dec)
    assert coded is not None and len(coded) < 4000
    assert np.array_equal(coded[codes], truth(1024, ra, dec))


def test_pixel_index_frames() -> None:
    """``pixel_index`` on frames with and without missing positions matches hpgeom."""
    rng = np.random.default_rng(5)
    ra = rng.uniform(50, 70, 50_000)
    dec = rng.uniform(-45, -25, 50_000)
    pix, ok = pixel_index(pd.DataFrame({"ra": ra, "dec": dec}), 1024)
    assert ok.all() and np.array_equal(pix, truth(1024, ra, dec))
    ra[::7], dec[::11] = np.nan, 95.0
    pix, ok = pixel_index(pd.DataFrame({"ra": ra, "dec": dec}), 1024)
    valid = np.isfinite(ra) & (np.abs(dec) <= 90)
    assert np.array_equal(ok, valid)
    assert np.array_equal(pix[valid], truth(1024, ra[valid], dec[valid]))
    assert (pix[~valid] == -1).all()


def test_rejects_bad_nside() -> None:
    with pytest.raises(ValueError, match="power of two"):
        nested_pixels(1000, np.array([1.0]), np.array([1.0]))


def _pieces(values: np.ndarray, cuts: list[int]) -> list[tuple[int, np.ndarray]]:
    """``values`` as ``(first row, view)`` pieces ending at ``cuts``, each a view with an
    offset into a larger array (as the reader hands over Arrow's chunks)."""
    bounds = [0, *cuts, len(values)]
    padded = np.concatenate([values[:5], values])
    return [(a, padded[5 + a : 5 + b]) for a, b in itertools.pairwise(bounds)]


def test_chunked_pixel_codes_equal_hpgeom() -> None:
    """Codes computed piece by piece are hpgeom's pixels: a compact tract (the table route),
    a wide band (no table), pieces of ra and dec that do not match and rows near a pole
    (both joined)."""
    rng = np.random.default_rng(12)
    n = 40_000
    cases = {
        "tract": (rng.uniform(56.0, 58.5, n), rng.uniform(-40.0, -38.0, n), [7, 20_000], None),
        "band": (rng.uniform(1.0, 359.0, n), rng.uniform(-30.0, 30.0, n), [13_000], None),
        "other pieces": (rng.uniform(56.0, 58.5, n), rng.uniform(-40.0, -38.0, n), [9], [11]),
        "pole": (rng.uniform(56.0, 58.5, n), rng.uniform(-89.0, -38.0, n), [5_000], None),
    }
    for label, (ra, dec, ra_cuts, dec_cuts) in cases.items():
        ra_p, dec_p = _pieces(ra, ra_cuts), _pieces(dec, dec_cuts or ra_cuts)
        out = np.full(n, -7, dtype=np.int64)
        codes, coded = chunked_pixel_codes(1024, ra_p, dec_p, piece_bounds(ra_p, dec_p), out)
        pixels = codes if coded is None else coded[codes]
        assert np.array_equal(pixels, truth(1024, ra, dec)), label
        assert (coded is not None) == (label in ("tract", "other pieces")), label


def test_pixel_codes_of_chunked_columns() -> None:
    """Positions in pieces, with a NaN and with HATS indices (one missing), give hpgeom's
    pixels and which rows have one; an empty partition has none."""
    from skydask.analyses.depthmap.pixels import pixel_codes
    from skydask.catalog.reader import ChunkedColumns

    rng = np.random.default_rng(3)
    n = 30_000
    ra, dec = rng.uniform(56.0, 58.5, n), rng.uniform(-40.0, -38.0, n)
    want = truth(1024, ra, dec)
    for nan_row in (None, 17_000):
        if nan_row is not None:
            ra[nan_row] = np.nan
        part = ChunkedColumns(
            {"ra": _pieces(ra, [100, 15_000]), "dec": _pieces(dec, [100, 15_000])}, n
        )
        codes, coded, has_pos = pixel_codes(part, 1024)
        pixels = codes if coded is None else coded[codes]
        ok = np.isfinite(ra)
        assert np.array_equal(has_pos, ok)
        assert np.array_equal(pixels[ok], want[ok])
    hp29 = truth(2**29, ra, dec)
    hp29[::1000] = -1  # no position
    part = ChunkedColumns({"_healpix_29": _pieces(hp29, [3, 29_000])}, n)
    pix, coded, has_pos = pixel_codes(part, 1024)
    assert coded is None and np.array_equal(has_pos, hp29 >= 0)
    assert np.array_equal(pix[has_pos], hp29[has_pos] >> 38)
    empty = ChunkedColumns.of_arrays({"ra": np.empty(0), "dec": np.empty(0)}, 0)
    assert [len(a) for a in pixel_codes(empty, 1024) if a is not None] == [0, 0]


def test_fill_slots_is_a_stable_counting_sort() -> None:
    """Each row's slot equals its position in a stable sort by code, offset by its group."""
    rng = np.random.default_rng(11)
    code = rng.choice(np.array([0, 3, 4, 9]), 10_000)  # codes with gaps, as in a table
    counts = np.bincount(code, minlength=10)
    first = np.cumsum(counts) - counts
    inverse = np.empty(len(code), dtype=np.intp)
    fill_slots(code, np.empty(0, dtype=np.int64), first.copy(), inverse)
    expected = np.empty(len(code), dtype=np.intp)
    expected[np.argsort(code, kind="stable")] = np.arange(len(code))
    assert np.array_equal(inverse, expected)
    # only some rows (the others keep what they held)
    rows = np.flatnonzero(rng.random(len(code)) < 0.7)
    counts = np.bincount(code[rows], minlength=10)
    some = np.full(len(code), -1, dtype=np.intp)
    fill_slots(code[rows], rows, np.cumsum(counts) - counts, some)
    expected_some = np.full(len(code), -1, dtype=np.intp)
    expected_some[rows[np.argsort(code[rows], kind="stable")]] = np.arange(len(rows))
    assert np.array_equal(some, expected_some)
