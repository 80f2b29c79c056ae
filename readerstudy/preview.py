"""A PNG of the first slice a reader sees, shown while the viewer (Cornerstone) loads.

The viewer bundle takes about a second to load and parse on a modest machine; the preview puts the
case's image on screen in a fraction of that. It is cut from the same display grid and windowed with
the same first preset as the viewer, so it looks like the viewer's first frame and is the same size
in every arm (the fused arm blends the T2 over the TRUS at the viewer's default 50 %).
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray

from inference.imaging import to_uint8
from readerstudy.display import SLICES
from readerstudy.models import Assignment, AssignmentSeries
from readerstudy.serving import view_grid

FUSED_OPACITY = 0.5  # the viewer's default T2 opacity over the TRUS


def _windowed(view: AssignmentSeries, slice_index: int) -> NDArray[np.float64]:
    grid = view_grid(view=view)
    preset = grid.presets[0]
    lower, upper = float(preset["lower"]), float(preset["upper"])
    image = np.asarray(grid.pixels[slice_index], dtype=np.float64)
    return np.clip((image - lower) / max(upper - lower, 1e-6), 0.0, 1.0)


def assignment_preview_png(*, assignment: Assignment, slice_index: int) -> bytes:
    """The axial display slice ``slice_index`` of the assignment as the viewer first shows it."""
    from PIL import Image

    if not 0 <= slice_index < SLICES:
        raise IndexError(f"slice {slice_index} is outside 0–{SLICES - 1}")
    views = {v.role: v for v in assignment.views.select_related("series", "assignment")}
    image = _windowed(views["primary"], slice_index)
    if "underlay" in views:
        image = FUSED_OPACITY * image + (1 - FUSED_OPACITY) * _windowed(
            views["underlay"], slice_index
        )
    out = io.BytesIO()
    # Already windowed to 0–1 (and blended): the one 8-bit scaling with that window.
    Image.fromarray(to_uint8(image, window=(0.0, 1.0)), mode="L").save(out, format="PNG")
    return out.getvalue()
