// Orientation markers (R/L/A/P/S/I) and a scale bar in mm over a Cornerstone3D viewport.
// Both come from the camera as rendered (canvas → world), not from assumptions about the
// series: a flipped, rotated or oblique view gets the right letters and the right scale.

// Patient axes in DICOM LPS: +x towards the patient's left, +y posterior, +z superior.
const AXES = [
  ["L", "R"],
  ["P", "A"],
  ["S", "I"],
];

// Letters of a direction in LPS, strongest component first; components below 0.3 of the
// vector (about 17°) are left out, so a slightly oblique axial reads "L", not "LAS".
export function orientationLabel(vec) {
  const norm = Math.hypot(vec[0], vec[1], vec[2]) || 1;
  const parts = [0, 1, 2]
    .map((axis) => ({ axis, value: vec[axis] / norm }))
    .filter((p) => Math.abs(p.value) >= 0.3)
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  return parts.map((p) => AXES[p.axis][p.value > 0 ? 0 : 1]).join("");
}

function sub(a, b) {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

// Screen directions of a viewport in world (LPS) terms, from two canvas points each.
export function screenDirections(viewport) {
  const canvas = viewport.canvas;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  const c2w = (x, y) => viewport.canvasToWorld([x, y]);
  const right = sub(c2w(w * 0.75, h / 2), c2w(w * 0.25, h / 2));
  const up = sub(c2w(w / 2, h * 0.25), c2w(w / 2, h * 0.75));
  const mmPerPixel = Math.hypot(...right) / (w * 0.5);
  return { right, up, mmPerPixel };
}

const NICE_MM = [1, 2, 5, 10, 20, 50, 100];

// Builds the marker and scale-bar elements inside `container` once; update() refreshes them.
export function attachOverlay({ viewport, container, prefix }) {
  const make = (cls, id) => {
    const el = document.createElement("div");
    el.className = `vp-label ${cls}`;
    el.id = `${prefix}-${id}`;
    container.appendChild(el);
    return el;
  };
  const markers = {
    left: make("marker marker-left", "marker-left"),
    right: make("marker marker-right", "marker-right"),
    top: make("marker marker-top", "marker-top"),
    bottom: make("marker marker-bottom", "marker-bottom"),
  };
  const bar = make("scale-bar", "scale-bar");
  const barLine = document.createElement("span");
  barLine.className = "scale-line";
  const barText = document.createElement("span");
  barText.className = "scale-text";
  bar.append(barLine, barText);

  function update() {
    if (!viewport.canvas || !viewport.canvas.clientWidth) return;
    const { right, up, mmPerPixel } = screenDirections(viewport);
    markers.right.textContent = orientationLabel(right);
    markers.left.textContent = orientationLabel(right.map((v) => -v));
    markers.top.textContent = orientationLabel(up);
    markers.bottom.textContent = orientationLabel(up.map((v) => -v));
    // The longest round length that fits in a quarter of the width.
    const maxMm = (viewport.canvas.clientWidth / 4) * mmPerPixel;
    const mm = NICE_MM.filter((v) => v <= maxMm).pop() || NICE_MM[0];
    barLine.style.width = `${Math.round(mm / mmPerPixel)}px`;
    barText.textContent = `${mm} mm`;
    bar.dataset.mm = String(mm);
    bar.dataset.px = String(mm / mmPerPixel);
  }
  return { update, markers, bar };
}
