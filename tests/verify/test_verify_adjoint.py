"""Dot-product tests of the linear advection sweeps and the implicit vertical diffusion."""

from diffflux.verify.adjoint import dot_product_tests


def test_sweeps_and_vertical_diffusion_adjoints():
    r = dot_product_tests(groups=("sweeps", "diffusion"))
    names = {k.rsplit("_", 1)[0] for k in r}
    expected = {"sweep_x_linear", "sweep_y_ppm_unlimited", "sweep_z_linear", "vertical_diffusion"}
    assert expected <= names
    assert r.pop("courant_x_max") > 1.0
    for k, v in r.items():
        assert v <= 1e-12, (k, v)
