"""Shared test configuration: float64 by default for precision tests, persistent compile cache."""

import os

import jax
import pytest

jax.config.update("jax_enable_x64", True)
_cache = os.environ.get("DIFFFLUX_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "diffflux-jax"))
try:
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
except Exception:  # pragma: no cover - older jax
    pass


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
