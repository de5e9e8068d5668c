"""Dot-product tests of a full linear step and of a run under nested checkpointing."""

import pytest

from diffflux.verify.adjoint import dot_product_tests


def test_full_linear_step_adjoint():
    r = dot_product_tests(groups=("step",))
    assert set(r) == {"full_step_linear_vjp", "full_step_linear_transpose"}
    for k, v in r.items():
        assert v <= 1e-12, (k, v)


@pytest.mark.slow
def test_checkpointed_run_adjoint():
    r = dot_product_tests(groups=("run",))
    assert set(r) == {"run6_nested_linear_vjp"}
    assert r["run6_nested_linear_vjp"] <= 1e-12
