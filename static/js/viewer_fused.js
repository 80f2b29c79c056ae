// Fused arm: the registered T2 over the TRUS (overlay) or beside it (side by side), with a
// linked crosshair (the point under the mouse on one is shown on the other, as fusion-biopsy
// systems do) and window/level per layer. Both are served on one display grid with one frame,
// so a world point is the same anatomy in both.

// `shared.syncing` is set by whichever side is copying a camera, so the copy does not echo back.
import { resizeWhenIdle } from "./viewer_mpr.js";

export function attachFused({ primary, underlay, group, engine, Events, onChange, shared }) {
  const stack = document.getElementById("viewport-stack");
  const frames = { primary: document.getElementById("frame-primary"), underlay: document.getElementById("frame-underlay") };
  const views = { primary, underlay };
  const crosses = {};
  for (const [name, frame] of Object.entries(frames)) {
    const el = document.createElement("div");
    el.className = "linked-cross";
    el.id = `cross-${name}`;
    el.hidden = true;
    frame.appendChild(el);
    crosses[name] = el;
  }
  // The TRUS takes window/level, zoom and pan of its own when it is under the mouse.
  group.addViewport("underlay", engine.id);
  underlay.element.addEventListener(Events.CAMERA_MODIFIED, () => {
    if (shared.syncing) return;
    shared.syncing = true;
    try {
      primary.setCamera(underlay.getCamera());
      primary.render();
    } finally {
      shared.syncing = false;
    }
  });

  function place(name, world) {
    const viewport = views[name];
    const box = viewport.canvas.getBoundingClientRect();
    const frame = frames[name].getBoundingClientRect();
    const [x, y] = viewport.worldToCanvas(world);
    crosses[name].style.left = `${box.left - frame.left + x}px`;
    crosses[name].style.top = `${box.top - frame.top + y}px`;
    crosses[name].hidden = false;
  }

  // The point under the mouse on one layer, shown on both (side by side only).
  function pointAt(name, clientX, clientY) {
    const viewport = views[name];
    const rect = viewport.canvas.getBoundingClientRect();
    const world = viewport.canvasToWorld([clientX - rect.left, clientY - rect.top]);
    place("primary", world);
    place("underlay", world);
    return world;
  }
  const state = { last: null };
  for (const name of ["primary", "underlay"]) {
    views[name].element.addEventListener("mousemove", (e) => {
      if (stack.dataset.mode === "side") state.last = pointAt(name, e.clientX, e.clientY);
    });
  }

  async function setMode(mode) {
    stack.dataset.mode = mode;
    if (mode !== "side") for (const c of Object.values(crosses)) c.hidden = true;
    await resizeWhenIdle(engine);
    shared.syncing = true;
    try {
      underlay.setCamera(primary.getCamera());
      underlay.render();
    } finally {
      shared.syncing = false;
    }
    onChange();
  }

  // Which layer a drag adjusts in the overlay mode (side by side: the one under the mouse).
  function setWindowLayer(layer) {
    primary.element.style.pointerEvents = layer === "underlay" ? "none" : "";
  }
  const layerSelect = document.getElementById("wl-layer");
  if (layerSelect) layerSelect.addEventListener("change", () => setWindowLayer(layerSelect.value));

  return { setMode, pointAt, mode: () => stack.dataset.mode || "overlay", state };
}
