// The index-lesion mark: press M (or the button), click the lesion. The point is kept in the
// served patient frame (mm, relative to the gland centre; the same frame in every arm) with the
// display slice, saved with the draft, drawn again on resume, and required from the study's
// score threshold.

export function attachMark({ viewport, container, config, form, onChange }) {
  let mark = config.mark || null;
  let armed = false;
  const element = viewport.element;
  const dot = document.createElement("div");
  dot.className = "lesion-mark";
  dot.id = "lesion-mark";
  dot.hidden = true;
  container.appendChild(dot);
  const info = document.getElementById("mark-info");
  const button = document.getElementById("btn-mark");
  const clear = document.getElementById("btn-mark-clear");

  function describe() {
    if (!info) return;
    if (!mark) {
      info.textContent = armed ? "Click the lesion on the image…" : "No lesion marked.";
    } else {
      const side = Math.abs(mark.x) < 1 ? "midline" : mark.x > 0 ? "patient's left" : "patient's right";
      info.textContent = `Marked on slice ${mark.slice + 1} (${side}, ${mark.z >= 0 ? "+" : ""}${mark.z.toFixed(1)} mm).`;
    }
    if (clear) clear.hidden = !mark || config.readOnly;
  }

  function draw() {
    const here = mark && viewport.getCurrentImageIdIndex() === mark.slice;
    dot.hidden = !here;
    if (!here) return;
    const [cx, cy] = viewport.worldToCanvas([mark.x, mark.y, mark.z]);
    const canvasBox = viewport.canvas.getBoundingClientRect();
    const box = container.getBoundingClientRect();
    dot.style.left = `${canvasBox.left - box.left + cx}px`;
    dot.style.top = `${canvasBox.top - box.top + cy}px`;
  }

  function arm(on) {
    armed = on && !config.readOnly;
    element.classList.toggle("marking", armed);
    if (button) button.setAttribute("aria-pressed", String(armed));
    describe();
  }

  // Capture phase: in mark mode the click is ours, not window/level's.
  element.addEventListener(
    "mousedown",
    (e) => {
      if (!armed || e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      const rect = viewport.canvas.getBoundingClientRect();
      const world = viewport.canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]);
      mark = {
        x: Math.round(world[0] * 100) / 100,
        y: Math.round(world[1] * 100) / 100,
        z: Math.round(world[2] * 100) / 100,
        slice: viewport.getCurrentImageIdIndex(),
      };
      arm(false);
      draw();
      onChange();
    },
    true,
  );
  if (button) button.addEventListener("click", () => arm(!armed));
  if (clear)
    clear.addEventListener("click", () => {
      mark = null;
      draw();
      describe();
      onChange();
    });
  describe();

  return {
    value: () => mark,
    toggle: () => arm(!armed),
    draw,
    goTo: () => mark && viewport.setImageIdIndex(mark.slice),
    // Words for what a submit would miss, or "" when nothing is.
    missing: () => {
      const from = config.markRequiredFrom;
      const score = Number(new FormData(form).get("pirads") || 0);
      return from && score >= from && !mark ? `a lesion mark (press M, then click the lesion; required from score ${from})` : "";
    },
  };
}
