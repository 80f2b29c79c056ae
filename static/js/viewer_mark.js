// The index-lesion mark: press M (or the button), click the lesion. The point is kept in the
// served patient frame (mm, relative to the gland centre; the same frame in every arm) with the
// display slice, saved with the draft, drawn again on resume, and required from the study's
// score threshold.

const NS = "http://www.w3.org/2000/svg";

export function attachMark({ viewport, container, config, form, onChange }) {
  let mark = config.mark || null;
  let armed = false;
  // Longest diameter: D, then two clicks on the lesion's slice ({a, b} in served mm).
  let measuring = null; // null, or [] / [a] while the two ends are being clicked
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "ref-lines");
  svg.id = "diameter-line";
  container.appendChild(svg);
  const element = viewport.element;
  const dot = document.createElement("div");
  dot.className = "lesion-mark";
  dot.id = "lesion-mark";
  dot.hidden = true;
  container.appendChild(dot);
  const info = document.getElementById("mark-info");
  const button = document.getElementById("btn-mark");
  const clear = document.getElementById("btn-mark-clear");

  function distance(a, b) {
    return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
  }

  function describe() {
    if (!info) return;
    if (!mark) {
      info.textContent = armed ? "Click the lesion on the image…" : "No lesion marked.";
    } else {
      const side = Math.abs(mark.x) < 1 ? "midline" : mark.x > 0 ? "patient's left" : "patient's right";
      const d = mark.diameter ? ` Longest diameter ${distance(mark.diameter.a, mark.diameter.b).toFixed(1)} mm.` : "";
      info.textContent = `Marked on slice ${mark.slice + 1} (${side}, ${mark.z >= 0 ? "+" : ""}${mark.z.toFixed(1)} mm).${d}`;
    }
    if (measuring) info.textContent = measuring.length ? "Click the other end of the longest diameter…" : "Click one end of the longest diameter…";
    if (clear) clear.hidden = !mark || config.readOnly;
  }

  function toScreen(world) {
    const [cx, cy] = viewport.worldToCanvas(world);
    const canvasBox = viewport.canvas.getBoundingClientRect();
    const box = container.getBoundingClientRect();
    return [canvasBox.left - box.left + cx, canvasBox.top - box.top + cy];
  }

  function draw() {
    const here = mark && viewport.getCurrentImageIdIndex() === mark.slice;
    dot.hidden = !here;
    svg.replaceChildren();
    if (here && mark.diameter) {
      const [x1, y1] = toScreen(mark.diameter.a);
      const [x2, y2] = toScreen(mark.diameter.b);
      const line = document.createElementNS(NS, "line");
      for (const [k, v] of Object.entries({ x1, y1, x2, y2, stroke: "#f43f5e" })) line.setAttribute(k, v);
      svg.appendChild(line);
    }
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
      if ((!armed && !measuring) || e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      const rect = viewport.canvas.getBoundingClientRect();
      const world = viewport.canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]).map((v) => Math.round(v * 100) / 100);
      if (measuring) {
        measuring.push(world);
        if (measuring.length === 2) {
          const [a, b] = measuring;
          measuring = null;
          element.classList.remove("marking");
          // Without a mark yet, the middle of the diameter is the lesion's point.
          if (!mark || mark.slice !== viewport.getCurrentImageIdIndex()) {
            mark = { x: (a[0] + b[0]) / 2, y: (a[1] + b[1]) / 2, z: a[2], slice: viewport.getCurrentImageIdIndex() };
          }
          mark.diameter = { a, b };
          draw();
          onChange();
        }
        describe();
        return;
      }
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
  const measureButton = document.getElementById("btn-diameter");
  if (measureButton) measureButton.addEventListener("click", () => measure());
  if (clear)
    clear.addEventListener("click", () => {
      mark = null;
      draw();
      describe();
      onChange();
    });
  describe();

  function measure() {
    if (config.readOnly) return;
    measuring = [];
    armed = false;
    element.classList.add("marking");
    describe();
  }

  return {
    value: () => mark,
    toggle: () => arm(!armed),
    measure,
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
