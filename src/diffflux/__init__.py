"""diffflux: a differentiable, GPU-ready inversion engine for greenhouse-gas fluxes."""

from diffflux.grid import HybridLevels, LatLonGrid, sigma_levels, standard_levels

__version__ = "0.1.0"

__all__ = ["HybridLevels", "LatLonGrid", "__version__", "sigma_levels", "standard_levels"]
