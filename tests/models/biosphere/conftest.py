"""Fixtures: a handful of land cells spanning the climates (fast; no global maps)."""

import pytest

from diffflux.models.biosphere.climate import sample_cells
from diffflux.models.biosphere.model import Biosphere


@pytest.fixture(scope="module")
def small():
    maps, drivers = sample_cells()
    return Biosphere.from_maps(maps), drivers
