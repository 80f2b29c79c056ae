"""Classical baseline: SimpleITK B-spline registration with Mattes mutual information.

Optional dependency (the ``bench`` extra). It starts from the same initial alignment as every other
method: ``inference.evaluate`` hands it the MR sampled through the frame alignment on the TRUS grid
(``register_case(deformable=...)``), so its result is a displacement in TRUS voxels like every other
method's, and the same quality checks and guard apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["sitk_available", "sitk_bspline_register"]


def sitk_available() -> bool:
    """True when SimpleITK can be imported."""
    try:
        import SimpleITK  # noqa: F401
    except ImportError:
        return False
    return True


def sitk_bspline_register(
    *,
    fixed: NDArray[np.floating],
    moving: NDArray[np.floating],
    spacing: Sequence[float],
    mesh_size: int = 6,
    iterations: int = 30,
    threads: int | None = None,
    seed: int = 0,
) -> NDArray[np.float32]:
    """B-spline free-form deformation maximising Mattes MI (32 bins, 10% random sampling, LBFGS-B,
    two resolution levels at 1/4 and 1/2 of the TRUS grid; a full-resolution level took several
    minutes per case on a shared 2-core CPU).

    Args:
        fixed, moving: ``(X, Y, Z)`` on the same grid.
        spacing: voxel size in mm.

    Returns:
        ``(3, X, Y, Z)`` displacement in voxels: ``warped(p) = moving(p + u(p))``.
    """
    import SimpleITK as sitk

    f = np.asarray(fixed, dtype=np.float32)
    m = np.asarray(moving, dtype=np.float32)
    if f.shape != m.shape or f.ndim != 3:
        raise ValueError(f"fixed and moving must be equal 3-D volumes, got {f.shape} and {m.shape}")
    sp = [float(s) for s in spacing]

    def image(arr: NDArray[np.float32]) -> sitk.Image:
        # numpy (X, Y, Z) -> SimpleITK index (x, y, z): transpose to its (z, y, x) array order
        img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
        img.SetSpacing(sp)
        return img

    fi, mi = image(f), image(m)
    tx = sitk.BSplineTransformInitializer(fi, [mesh_size] * 3)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.1, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsLBFGSB(
        gradientConvergenceTolerance=1e-5,
        numberOfIterations=iterations,
        maximumNumberOfCorrections=5,
    )
    reg.SetShrinkFactorsPerLevel([4, 2])
    reg.SetSmoothingSigmasPerLevel([2, 1])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetInitialTransform(tx, inPlace=True)
    if threads:
        reg.SetNumberOfThreads(int(threads))
    reg.Execute(fi, mi)
    conv = sitk.TransformToDisplacementFieldFilter()
    conv.SetReferenceImage(fi)
    field = sitk.GetArrayFromImage(conv.Execute(tx))  # (z, y, x, 3) in mm along (x, y, z)
    disp = np.stack([field[..., c].transpose(2, 1, 0) / sp[c] for c in range(3)])
    return disp.astype(np.float32)
