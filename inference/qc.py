"""Quality-control figure of a registration: checkerboard and gland-contour overlays (matplotlib Agg)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from inference.preprocess import intensity_normalise  # noqa: E402

__all__ = ["checkerboard", "qc_figure_save"]


def checkerboard(
    a: NDArray[np.floating], b: NDArray[np.floating], tiles: int = 8
) -> NDArray[np.float32]:
    """Alternate square tiles of two equally shaped 2-D images (``tiles`` per side)."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"checkerboard needs two equal 2-D images, got {a.shape} and {b.shape}")
    ii, jj = np.indices(a.shape)
    mask = ((ii * tiles // a.shape[0]) + (jj * tiles // a.shape[1])) % 2 == 0
    return np.where(mask, a, b).astype(np.float32)


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
