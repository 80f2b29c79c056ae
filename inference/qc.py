"""Quality-control images of a registration.

* ``qc_images_write``: the two PNGs a registration job stores next to its outputs (PIL; the
  coordinator's case and job pages show them).
* ``qc_figure_save``: the three-plane figure of the command-line registration (matplotlib Agg).

Importing this module loads neither torch nor matplotlib (the web process reads ``QC_IMAGES``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inference.imaging import checkerboard, to_uint8

__all__ = ["QC_IMAGES", "qc_figure_save", "qc_images_write", "qc_slice_index"]

# Name in URLs and status JSON -> file name in a job's output folder.
QC_IMAGES = {"checkerboard": "qc_checkerboard.png", "contours": "qc_contours.png"}


def _display(slice_: NDArray[Any]) -> NDArray[Any]:
    # Voxel (i, j) -> image rows j, columns i, flipped so anterior is up (RAS j grows upward).
    return np.flipud(np.asarray(slice_).T)


def _boundary(mask: NDArray[Any]) -> NDArray[np.bool_]:
    from scipy import ndimage

    m = np.asarray(mask) > 0
    return np.asarray(m & ~ndimage.binary_erosion(m), dtype=bool)


def qc_slice_index(label: NDArray[Any] | None, shape: tuple[int, ...]) -> int:
    """The axial slice through the gland's centre, or the middle slice when there is no gland."""
    if label is not None and np.any(label):
        ks = np.nonzero(np.asarray(label) > 0)[2]
        return int(round(float(ks.mean())))
    return shape[2] // 2


def qc_images_write(
    *,
    folder: Path,
    fixed: NDArray[Any],
    warped: NDArray[Any],
    warped_label: NDArray[Any] | None,
    fixed_label: NDArray[Any] | None,
    tiles: int = 8,
) -> dict[str, str]:
    """Write ``qc_checkerboard.png`` and ``qc_contours.png`` for the gland's central axial slice.

    Checkerboard: alternating tiles of the TRUS and the registered MR. Contours: the TRUS in grey
    with the warped MR gland (red) and, when known, the TRUS gland (green). Returns
    :data:`QC_IMAGES`.
    """
    from PIL import Image

    k = qc_slice_index(fixed_label if fixed_label is not None else warped_label, fixed.shape)
    us = _display(to_uint8(fixed[:, :, k]))
    mr = _display(to_uint8(warped[:, :, k]))
    checker = checkerboard(us, mr, tiles=tiles).astype(np.uint8)
    Image.fromarray(checker, mode="L").save(folder / QC_IMAGES["checkerboard"])

    rgb = np.stack([us, us, us], axis=-1).astype(np.uint8)
    if warped_label is not None:
        edge = _display(_boundary(warped_label[:, :, k]))
        rgb[edge] = (230, 40, 40)
    if fixed_label is not None:
        edge = _display(_boundary(fixed_label[:, :, k]))
        rgb[edge] = (40, 200, 60)
    Image.fromarray(rgb, mode="RGB").save(folder / QC_IMAGES["contours"])
    return dict(QC_IMAGES)


def qc_figure_save(
    path: str | os.PathLike[str],
    *,
    us: NDArray[np.floating],
    mr_on_us: NDArray[np.floating],
    warped_mr: NDArray[np.floating],
    us_label: NDArray[np.generic] | None = None,
    mr_label_on_us: NDArray[np.generic] | None = None,
    warped_mr_label: NDArray[np.generic] | None = None,
    title: str = "",
) -> Path:
    """Write a PNG: rows = initial alignment (``mr_on_us``: the MR through the frame alignment) /
    after registration, columns = three orthogonal
    mid-gland slices as TRUS|MR checkerboards, with TRUS (green) and MR (red) gland contours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inference.preprocess import intensity_normalise

    us_n = intensity_normalise(np.asarray(us))
    rows = [
        ("initial", intensity_normalise(np.asarray(mr_on_us)), mr_label_on_us),
        ("after", intensity_normalise(np.asarray(warped_mr)), warped_mr_label),
    ]
    if us_label is not None and np.asarray(us_label).any():
        centre = np.round(np.argwhere(np.asarray(us_label) > 0).mean(axis=0)).astype(int)
    else:
        centre = np.asarray(us_n.shape) // 2
    fig, axes = plt.subplots(2, 3, figsize=(11, 7), dpi=90)
    for r, (name, mr_img, mr_lab) in enumerate(rows):
        for axis in range(3):
            ax = axes[r, axis]
            take = [slice(None)] * 3
            take[axis] = int(centre[axis])  # type: ignore[call-overload]
            sl = tuple(take)
            ax.imshow(checkerboard(us_n[sl], mr_img[sl]).T, cmap="gray", origin="lower")
            if us_label is not None:
                ax.contour(np.asarray(us_label)[sl].T, levels=[0.5], colors="lime", linewidths=1)
            if mr_lab is not None:
                ax.contour(np.asarray(mr_lab)[sl].T, levels=[0.5], colors="red", linewidths=1)
            ax.set_title(f"{name}: axis {axis} slice {int(centre[axis])}", fontsize=9)
            ax.axis("off")
    fig.suptitle(title or "MR→TRUS registration QC (green TRUS gland, red MR gland)", fontsize=10)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, p)
    return p
