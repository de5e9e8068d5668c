"""Parameters as positive multipliers of the defaults, so any subset can be optimised.

``BiosphereParams`` is a pytree of multipliers (all ones by default): one ``(NPFT,)`` array per PFT
parameter and one scalar per global (soil, trace-gas, fire, water) parameter. The effective value is
``default * multiplier``; an inversion optimises ``log(multiplier)`` with a log-normal prior (INVERSION.md).
Categorical parameters (C3/C4, phenology type) and the temperature bounds ``t_min``/``t_max`` are not
multipliers; ``t_opt`` [degC, all > 0] is.

Select a subset with :meth:`BiosphereParams.filter_spec` and ``equinox.partition``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from diffflux.models.biosphere.pft import NPFT, default_table

# Global (not per-PFT) parameters: name -> (default, unit, meaning and source).
GLOBAL_DEFAULTS: dict[str, tuple[float, str, str]] = {
    "k_litter": (0.45, "yr-1", "litter decomposition rate at 10 C and optimal moisture (Sim-CYCLE range)"),
    "k_soil": (0.015, "yr-1", "humus decomposition rate at 10 C and optimal moisture (Sim-CYCLE range)"),
    "humification": (0.3, "1", "fraction of decomposed litter carbon transferred to the soil pool"),
    "moist_floor": (0.15, "1", "decomposition moisture factor at completely dry or saturated soil"),
    "ch4_ratio": (
        0.066,
        "mol CH4-C (mol HR-C)-1",
        "wetland CH4 production per heterotrophic respiration "
        "at 10 C (Cao et al. 1996 type; tuned to the wetland range of BIOSPHERE.md)",
    ),
    "ch4_q10": (2.0, "1", "Q10 of CH4 production (Cao et al. 1996)"),
    "ch4_oxidised": (
        0.6,
        "1",
        "fraction of produced CH4 oxidised before emission (Cao et al. 1996: 0.6-0.9)",
    ),
    "paddy_ratio": (0.024, "mol CH4-C (mol HR-C)-1", "CH4 production per HR in flooded rice paddies"),
    "curry_k0": (3.1e-5, "s-1", "CH4 oxidation rate constant of Curry (2007), tuned to ~30 Tg yr-1"),
    "n2o_nitrification": (0.00076, "1", "fraction of nitrified N lost as N2O (NGAS, Parton et al. 1996)"),
    "n2o_denitrification": (0.0013, "1", "N2O from denitrification per mineralised N at saturation (NGAS)"),
    "n2o_ef_crop": (0.01, "1", "direct N2O-N per N input on cropland (IPCC 2006/2019 Tier 1 EF1)"),
    "soil_cn": (13.0, "g C (g N)-1", "C:N ratio of decomposing soil organic matter"),
    "fire_scale": (
        6.0,
        "1",
        "multiplier of the burned-area function of Thonicke et al. (2001) applied daily; "
        "calibrated to the ~2 PgC yr-1 of GFED4s (van der Werf et al. 2017)",
    ),
    "melt_factor": (3.0, "kg m-2 K-1 d-1", "degree-day snowmelt factor"),
    "priestley_taylor": (1.26, "1", "Priestley-Taylor alpha of potential evapotranspiration"),
}

PFT_MULTIPLIED: tuple[str, ...] = tuple(
    k for k in default_table() if k not in ("c4", "phenology", "t_min", "t_max", "emission_factors")
)


class BiosphereParams(eqx.Module):
    """Multipliers of the default parameters (pytree; every leaf positive, default 1).

    Attributes:
        pft: ``{name: (NPFT,) array}`` for each name in :data:`PFT_MULTIPLIED`.
        glob: ``{name: () array}`` for each name in :data:`GLOBAL_DEFAULTS`.
    """

    pft: dict[str, jax.Array]
    glob: dict[str, jax.Array]

    @classmethod
    def ones(cls, dtype=jnp.float64) -> BiosphereParams:
        return cls(
            pft={k: jnp.ones(NPFT, dtype) for k in PFT_MULTIPLIED},
            glob={k: jnp.ones((), dtype) for k in GLOBAL_DEFAULTS},
        )

    def filter_spec(self, names) -> BiosphereParams:
        """Boolean pytree selecting the named multipliers (for ``equinox.partition``)."""
        names = set(names)
        unknown = names - set(PFT_MULTIPLIED) - set(GLOBAL_DEFAULTS)
        if unknown:
            raise KeyError(
                f"BiosphereParams: unknown parameter(s) {sorted(unknown)}; PFT parameters: "
                f"{', '.join(PFT_MULTIPLIED)}; global parameters: {', '.join(GLOBAL_DEFAULTS)}"
            )
        return BiosphereParams(pft={k: k in names for k in self.pft}, glob={k: k in names for k in self.glob})

    def effective(self) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
        """``(pft_values, global_values)``: defaults times multipliers, in the multipliers' dtype."""
        dtype = next(iter(self.pft.values())).dtype
        table = default_table()
        pft = {k: jnp.asarray(v, dtype) for k, v in table.items()}
        for k, m in self.pft.items():
            pft[k] = pft[k] * m
        glob = {k: jnp.asarray(GLOBAL_DEFAULTS[k][0], dtype) * m for k, m in self.glob.items()}
        return pft, glob


def check_positive(params: BiosphereParams) -> None:
    """Raise if any multiplier is not finite and positive (call outside ``jit``)."""
    for group, d in (("pft", params.pft), ("glob", params.glob)):
        for k, v in d.items():
            a = np.asarray(v)
            if not np.all(np.isfinite(a)) or np.any(a <= 0):
                raise ValueError(
                    f"BiosphereParams.{group}[{k!r}]: multipliers must be finite and > 0, found {a}"
                )
