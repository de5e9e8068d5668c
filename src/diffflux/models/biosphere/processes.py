"""Process formulations of the VISIT-like biosphere (pure JAX, element-wise over tiles or cells).

Rates are per day, carbon in g C m-2, water in kg m-2 (= mm), temperatures in degC unless a name ends
in ``_k``. Each function names the paper its formulation follows.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from diffflux.models.biosphere.smooth import logistic, smooth_clamp, softplus

R_GAS = 8.314462618
UMOL_C_TO_G = 12.011e-6  # g C per umol CO2


def temperature_response_simcycle(t, t_min, t_opt, t_max, width=0.5):
    """Sim-CYCLE photosynthesis temperature curve (Ito & Oikawa 2002).

    ``f = (T - Tmin)(T - Tmax) / ((T - Tmin)(T - Tmax) - (T - Topt)^2)``: 1 at ``Topt``, 0 at the bounds.
    ``T`` is first smoothly clamped into ``[Tmin, Tmax]`` (inside it the denominator is strictly negative),
    so the curve is smooth and exactly zero far outside the bounds.
    """
    tc = smooth_clamp(t, t_min, t_max, width)
    num = (tc - t_min) * (tc - t_max)
    den = num - (tc - t_opt) ** 2
    return num / den


def gamma_star_ppm(t_k):
    """CO2 compensation point without dark respiration [ppm] (Bernacchi et al. 2001)."""
    return 42.75 * jnp.exp(37830.0 * (t_k - 298.15) / (298.15 * R_GAS * t_k))


def co2_response(co2_ppm, t_k, c4):
    """Michaelis-Menten-type CO2 response, normalised to 1 at 350 ppm and 25 C.

    C3: light-limited Farquhar form ``(Ci - G*) / (Ci + 2 G*)`` with ``Ci = 0.7 Ca`` (Farquhar et al. 1980;
    Collatz et al. 1991); C4: ``Ci / (Ci + 20 ppm)`` with ``Ci = 0.4 Ca`` (near-saturated CO2 pump;
    Collatz et al. 1992). ``c4`` is 0 or 1 (per PFT).
    """
    gs = gamma_star_ppm(t_k)
    ci3 = 0.7 * co2_ppm
    f3 = softplus(ci3 - gs, 1.0) / (ci3 + 2.0 * gs)
    ref3 = (0.7 * 350.0 - 42.75) / (0.7 * 350.0 + 2.0 * 42.75)
    ci4 = 0.4 * co2_ppm
    f4 = ci4 / (ci4 + 20.0)
    ref4 = 140.0 / 160.0
    return (1.0 - c4) * f3 / ref3 + c4 * f4 / ref4


def canopy_gpp(psat, par_noon, lai, k_ext, qe, daylength):
    """Daily canopy GPP [g C m-2 d-1] by the Monsi-Saeki / Kuroiwa integral (Ito & Oikawa 2002).

    ``GPP = 2 Psat DL / K ln[(1 + sqrt(1 + b)) / (1 + sqrt(1 + b exp(-K LAI)))]``, ``b = K QE PAR0 / Psat``,
    with ``Psat`` [umol m-2 s-1], noon PAR ``PAR0`` [umol photons m-2 s-1] of a sine-squared day of length
    ``DL`` [s] (Kuroiwa 1966). Finite at zero light, zero LAI and ``Psat -> 0`` (``psat`` must be > 0).
    """
    b = k_ext * qe * par_noon / psat
    ratio = (1.0 + jnp.sqrt(1.0 + b)) / (1.0 + jnp.sqrt(1.0 + b * jnp.exp(-k_ext * lai)))
    return 2.0 * psat * daylength / k_ext * jnp.log(ratio) * UMOL_C_TO_G


def q10_factor(t, q10, t_ref=15.0):
    """``q10 ** ((T - T_ref) / 10)`` with ``T`` smoothly clamped to [-40, 50] C."""
    tc = smooth_clamp(t, -40.0, 50.0, 1.0)
    return jnp.exp(jnp.log(q10) * (tc - t_ref) / 10.0)


def lloyd_taylor(t):
    """Lloyd & Taylor (1994) soil respiration response, 1 at 10 C: ``exp(308.56 (1/56.02 - 1/(T + 46.02)))``.

    ``T`` is smoothly bounded below at -40 C, keeping away from the pole at -46.02 C.
    """
    tc = -40.0 + softplus(t + 40.0, 1.0)
    return jnp.exp(308.56 * (1.0 / 56.02 - 1.0 / (tc + 46.02)))


def globfirm_burned_fraction(s):
    """Annual fractional burned area from the fire-season length ``s`` in [0, 1] (Thonicke et al. 2001).

    ``A(s) = s exp((s - 1) / (0.45 (s - 1)^3 + 2.83 (s - 1)^2 + 2.96 (s - 1) + 1.04))``; the denominator is
    positive (>= 0.18) on [0, 1].
    """
    x = s - 1.0
    return s * jnp.exp(x / (0.45 * x**3 + 2.83 * x**2 + 2.96 * x + 1.04))


def fire_probability(moisture, extinction):
    """Daily fire probability from relative fuel moisture (Thonicke et al. 2001): ``exp(-pi (m / m_e)^2)``."""
    return jnp.exp(-jnp.pi * (moisture / extinction) ** 2)


def curry_uptake(ch4_mol_mol, t, t_k, theta, porosity, crop_fraction, k0):
    """Upland soil CH4 uptake [mol CH4 m-2 s-1, positive = uptake] after Curry (2007, GBC 21).

    ``J = C_atm sqrt(D_soil k) r_N``: ``C_atm`` [mol m-3] the CH4 concentration in soil air at the surface,
    ``D_soil`` the CH4 diffusivity in soil from the free-air value ``1.952e-5 (T/273.15)^1.75`` m2 s-1 and
    the air-filled porosity by Millington & Quirk (1961) ``eps_a^(10/3) / phi^2``, the oxidation rate
    ``k = k0 f_T f_W`` with ``f_T = exp(0.0693 T - 8.56e-7 T^4)`` (T in C, and zero below freezing by a
    logistic), ``f_W`` a log-linear decline of activity with soil water potential between -0.2 and
    -1e5 kPa (Clapp & Hornberger 1978 loam, b = 5.39, psi_sat = -0.478 kPa), and ``r_N = 1 - 0.75 crop``
    for cultivated land. ``theta`` is the volumetric water content [m3 m-3].
    """
    c_atm = ch4_mol_mol * 101325.0 / (R_GAS * t_k)
    d0 = 1.952e-5 * (t_k / 273.15) ** 1.75
    eps_a = softplus(porosity - theta, 0.005)
    d_soil = d0 * eps_a ** (10.0 / 3.0) / porosity**2
    tcl = smooth_clamp(t, -30.0, 45.0, 1.0)
    f_t = jnp.exp(0.0693 * tcl - 8.56e-7 * tcl**4) * logistic(tcl, 0.0, 1.0)
    rel = smooth_clamp(theta / porosity, 0.02, 1.0, 0.01)
    log_psi = math.log10(0.478) - 5.39 * jnp.log10(rel)  # log10(-psi / kPa)
    f_w = smooth_clamp(1.0 - (log_psi - math.log10(0.2)) / (5.0 - math.log10(0.2)), 0.0, 1.0, 0.02)
    k = k0 * f_t * f_w
    return c_atm * jnp.sqrt(d_soil * k + 1e-30) * (1.0 - 0.75 * crop_fraction)


def ngas_ph(ph):
    """pH response of nitrification N2O (Parton et al. 1996, NGAS): ``0.56 + atan(0.45 pi (pH - 5)) / pi``."""
    return 0.56 + jnp.arctan(0.45 * jnp.pi * (ph - 5.0)) / jnp.pi
