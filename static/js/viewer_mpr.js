// MPR: sagittal and coronal reformats of the T2 beside the axial (layout 1×3), with reference
// lines of the other two planes in each view; a double-click in any view moves all three planes
// through that point. The reformats are served stacks cut from the same display grid as the
// axial slices (readerstudy/display.py), so they share one patient frame with it.

const NS = "http://www.w3.org/2000/svg";
const COLOURS = { axial: "#f43f5e", sagittal: "#facc15", coronal: "#22d3ee" };
const EXTENT = 200; // mm: long enough to cross any view of the 128 × 80 mm grid

const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));

// Cornerstone skips a resize while a render is pending (it keeps the old canvas size and the
// image is stretched), so resize once the frame is done, until every canvas matches its box.
export async function resizeWhenIdle(engine) {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    await frame();
    engine.resize(true, true);
    const stale = engine.getViewports().some((vp) => {
      const c = vp.canvas;
      return c && c.clientWidth && Math.abs(c.width - Math.round(c.clientWidth * devicePixelRatio)) > 1;
    });
    if (!stale) return;
  }
}

function planePosition(core, viewport, axis) {
  const plane = core.metaData.get("imagePlaneModule", viewport.getCurrentImageId());
  return plane && plane.imagePositionPatient ? plane.imagePositionPatient[axis] : null;
}

function nearest(positions, value) {
  let best = 0;
  positions.forEach((p, i) => {
    if (Math.abs(p - value) < Math.abs(positions[best] - value)) best = i;
  });
  return best;
}

export function attachMpr({ core, engine, group, primary, manifest, Events, attachOverlay, onChange }) {
  const planes = manifest.planes || {};
  if (!planes.sagittal || !planes.coronal) return null;
  const grid = document.getElementById("viewport-grid");
  const views = { axial: primary };
  const cells = { axial: document.getElementById("frame-primary") };
  const svgs = {};
  const overlays = {};
  let enabled = null;

  function svgFor(name) {
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "ref-lines");
    svg.id = `ref-lines-${name}`;
    cells[name].appendChild(svg);
    return svg;
  }

  function line(svg, viewport, a, b, colour, cell) {
    const box = viewport.canvas.getBoundingClientRect();
    const frame = cell.getBoundingClientRect();
    const [x1, y1] = viewport.worldToCanvas(a);
    const [x2, y2] = viewport.worldToCanvas(b);
    const el = document.createElementNS(NS, "line");
    const dx = box.left - frame.left;
    const dy = box.top - frame.top;
    el.setAttribute("x1", x1 + dx);
    el.setAttribute("y1", y1 + dy);
    el.setAttribute("x2", x2 + dx);
    el.setAttribute("y2", y2 + dy);
    el.setAttribute("stroke", colour);
    svg.appendChild(el);
  }

  // The current point where the three planes cross, in served patient mm.
  function crossing() {
    return [planePosition(core, views.sagittal, 0), planePosition(core, views.coronal, 1), planePosition(core, views.axial, 2)];
  }

  function draw() {
    if (grid.dataset.layout !== "1x3" || !enabled) {
      for (const svg of Object.values(svgs)) svg.replaceChildren();
      return;
    }
    const [x, y, z] = crossing();
    if (x === null || y === null || z === null) return;
    const E = EXTENT;
    const lines = {
      axial: [
        [[x, -E, z], [x, E, z], COLOURS.sagittal],
        [[-E, y, z], [E, y, z], COLOURS.coronal],
      ],
      sagittal: [
        [[x, -E, z], [x, E, z], COLOURS.axial],
        [[x, y, -E], [x, y, E], COLOURS.coronal],
      ],
      coronal: [
        [[-E, y, z], [E, y, z], COLOURS.axial],
        [[x, y, -E], [x, y, E], COLOURS.sagittal],
      ],
    };
    for (const [name, items] of Object.entries(lines)) {
      svgs[name].replaceChildren();
      for (const [a, b, colour] of items) line(svgs[name], views[name], a, b, colour, cells[name]);
    }
  }

  // Every plane through one point (double-click).
  function goTo(world) {
    const positions = manifest.positions;
    views.axial.setImageIdIndex(nearest(positions.axial, world[2]));
    views.sagittal.setImageIdIndex(nearest(positions.sagittal, world[0]));
    views.coronal.setImageIdIndex(nearest(positions.coronal, world[1]));
  }

  function onDoubleClick(viewport) {
    return (e) => {
      if (grid.dataset.layout !== "1x3") return;
      const rect = viewport.canvas.getBoundingClientRect();
      goTo(viewport.canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]));
    };
  }

  async function enable() {
    svgs.axial = svgFor("axial");
    primary.element.addEventListener("dblclick", onDoubleClick(primary));
    for (const name of ["sagittal", "coronal"]) {
      const element = document.getElementById(`viewport-${name}`);
      cells[name] = document.getElementById(`cell-${name}`);
      engine.enableElement({ viewportId: name, type: core.Enums.ViewportType.STACK, element, defaultOptions: { background: [0, 0, 0] } });
      const viewport = engine.getViewport(name);
      group.addViewport(name, engine.id);
      views[name] = viewport;
      svgs[name] = svgFor(name);
      await viewport.setStack(planes[name], Math.floor(planes[name].length / 2));
      const { voiRange } = primary.getProperties();
      if (voiRange) viewport.setProperties({ voiRange });
      viewport.render();
      overlays[name] = attachOverlay({ viewport, container: cells[name], prefix: name });
      for (const ev of [Events.STACK_NEW_IMAGE, Events.CAMERA_MODIFIED]) {
        element.addEventListener(ev, () => {
          overlays[name].update();
          draw();
        });
      }
      element.addEventListener("dblclick", onDoubleClick(viewport));
      element.addEventListener("contextmenu", (e) => e.preventDefault());
    }
    // The reformats open through the axial slice on screen and the middle of the other two.
    goTo([0, 0, planePosition(core, primary, 2) ?? 0]);
  }

  async function setLayout(layout) {
    grid.dataset.layout = layout;
    for (const name of ["sagittal", "coronal"]) document.getElementById(`cell-${name}`).hidden = layout !== "1x3";
    if (layout === "1x3" && !enabled) {
      enabled = enable();
    }
    if (enabled) await enabled;
    await resizeWhenIdle(engine);
    for (const o of Object.values(overlays)) o.update();
    draw();
    onChange();
  }

  for (const ev of [Events.STACK_NEW_IMAGE, Events.CAMERA_MODIFIED]) primary.element.addEventListener(ev, draw);
  return { setLayout, draw, views, goTo, crossing, layout: () => grid.dataset.layout };
}
