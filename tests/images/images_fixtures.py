"""Session fixtures of the skydask.images tests, loaded with ``pytest_plugins``."""

from __future__ import annotations

import pytest
from images_testdata import NOISE, SMALL, synth_stack

from skydask.synth.images import ImageStackInfo


@pytest.fixture(scope="session")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> ImageStackInfo:
    """Six visits (g, r, i), 256 x 256, a rich star field (``images_testdata.SMALL``)."""
    return synth_stack(tmp_path_factory, **SMALL)


@pytest.fixture(scope="session")
def noise_stack(tmp_path_factory: pytest.TempPathFactory) -> ImageStackInfo:
    """Eight r visits of empty sky, sigma 10 e-, whole-pixel dithers (``NOISE``)."""
    return synth_stack(tmp_path_factory, **NOISE)
