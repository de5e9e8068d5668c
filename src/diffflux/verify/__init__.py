"""Transport verification suite: standard test cases on the sphere, conservation, analytics,
adjoints.

Modules:

* :mod:`~diffflux.verify.diagnostics` - error norms (Williamson et al. 1992), convergence orders,
  cell averages, filament and mixing diagnostics (Lauritzen et al. 2012);
* :mod:`~diffflux.verify.williamson` - Williamson case 1 (cosine bell, solid-body rotation);
* :mod:`~diffflux.verify.lauritzen` - Lauritzen et al. (2012) deformational flows (cases 3 and 4);
* :mod:`~diffflux.verify.conservation` - mass, uniformity and positivity with divergent 3-D met;
* :mod:`~diffflux.verify.analytic` - diffusion and chemistry against analytic solutions;
* :mod:`~diffflux.verify.adjoint` - dot-product and Taylor tests;
* :mod:`~diffflux.verify.suite` - :func:`run_verification`, :func:`format_table`, :func:`to_json`.
"""

from diffflux.verify.suite import CASES, format_table, run_verification, to_json

__all__ = ["CASES", "format_table", "run_verification", "to_json"]
