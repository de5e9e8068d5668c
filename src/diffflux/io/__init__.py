"""Input/output at the edges of the differentiable chain (xarray/netCDF live only here and in readers)."""

from diffflux.io.netcdf import grid_coords, mixing_ratio_dataset

__all__ = ["grid_coords", "mixing_ratio_dataset"]
