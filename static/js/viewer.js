// Reader viewer: Cornerstone3D stack viewport(s) plus the scoring form with autosave and
// active-time counting. Everything it loads comes from the per-assignment manifest URLs in the
// page config; it never builds an image URL itself.
const config = JSON.parse(document.getElementById("viewer-config").textContent);

// Manifests and the (large) Cornerstone bundle load in parallel; the template preloads the bundle.
const manifestsPromise = Promise.all([
  fetchManifest(config.primary),
  config.underlay ? fetchManifest(config.underlay) : Promise.resolve(null),
]);
manifestsPromise.catch(() => {}); // handled in start(); avoids an early unhandled-rejection report
// Our small modules load in parallel with the bundle, not after it.
const [{ core, tools, dicomImageLoader }, { attachOverlay }, { attachMark }, { attachState, attachCine, attachHelp, attachKeys }, { attachLayouts, resizeWhenIdle }] = await Promise.all([
  import("../vendor/cornerstone.js"),
  import("./viewer_overlay.js"),
  import("./viewer_mark.js"),
  import("./viewer_extras.js"),
  import("./viewer_layout.js"),
]);
const statusEl = document.getElementById("viewport-status");
// A PNG of the first slice, on screen while Cornerstone loads (readerstudy/preview.py).
const previewEl = document.getElementById("viewport-preview");
function previewShownMs() {
  if (!previewEl.isConnected || !previewEl.complete || !previewEl.naturalWidth) return null;
  const entry = performance.getEntriesByName(previewEl.src)[0];
  return entry ? Math.round(entry.responseEnd) : null;
}
const sliceEl = document.getElementById("slice-counter");
const presetEl = document.getElementById("wl-preset");
const form = document.getElementById("read-form");
const saveStatus = document.getElementById("save-status");
const errorsEl = document.getElementById("form-errors");
const csrf = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";

const state = { ready: false, error: null, primary: null, underlay: null, presets: [], total: 0 };
// Where the time to first image goes (ms since navigation start), for bench/reader_viewer_bench.py.
state.timings = { moduleLoaded: Math.round(performance.now()) };
window.mritrusViewer = state;

// --- active reading time: counted only while the page is visible ---------------------------
let activeMs = 0;
let visibleSince = document.visibilityState === "visible" ? performance.now() : null;
document.addEventListener("visibilitychange", () => {
  const now = performance.now();
  if (document.visibilityState === "visible") {
    visibleSince = now;
  } else if (visibleSince !== null) {
    activeMs += now - visibleSince;
    visibleSince = null;
    if (dirty || activeMs > 0) saveDraft({ keepalive: true });
  }
});
function takeActiveSeconds() {
  const now = performance.now();
  let ms = activeMs;
  if (visibleSince !== null) {
    ms += now - visibleSince;
    visibleSince = now;
  }
  activeMs = 0;
  return ms / 1000;
}
function giveBackSeconds(seconds) {
  activeMs += seconds * 1000; // a failed save must not lose the time it carried
}

// --- form ------------------------------------------------------------------------------------
function formData() {
  const fd = new FormData(form);
  return {
    pirads: fd.get("pirads") || null,
    zone: fd.get("zone") || "",
    side: fd.get("side") || "",
    likert: fd.get("likert") || null,
    comment: fd.get("comment") || "",
    mark: state.mark ? state.mark.value() : null,
  };
}

let dirty = false;
let saveTimer = null;
let inFlight = null;

async function post(url, body, { keepalive = false } = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    credentials: "same-origin",
    body: JSON.stringify(body),
    keepalive,
  });
  let data = {};
  try {
    data = await response.json();
  } catch (e) {
    data = { errors: { __all__: [`HTTP ${response.status}`] } };
  }
  return { ok: response.ok, status: response.status, data };
}

// The server writes its messages for people ("Choose a PI-RADS score."): shown as they are.
function showErrors(errors) {
  errorsEl.textContent = Object.values(errors || {})
    .map((v) => v.join(" "))
    .join(" ");
}

// What a submit would still miss, in words, before asking the server (which checks again).
const REQUIRED = [
  ["pirads", "a PI-RADS score (keys 1–5)"],
  ["zone", "the zone (P / T / N)"],
  ["side", "the side (L / R / B / 0)"],
  ["likert", "your confidence (Shift + 1–7)"],
];
function missingFields() {
  const data = formData();
  const missing = REQUIRED.filter(([name]) => !data[name]).map(([name, words]) => ({ name, words }));
  if (state.mark && state.mark.missing()) missing.push({ name: "mark-fieldset", words: state.mark.missing() });
  return missing;
}

let submitted = false;

async function saveDraft({ keepalive = false } = {}) {
  if (config.readOnly || submitted) return;
  if (inFlight) await inFlight.catch(() => {});
  const seconds = takeActiveSeconds();
  const wasDirty = dirty;
  dirty = false;
  inFlight = post(config.draftUrl, { ...formData(), active_seconds: seconds }, { keepalive });
  try {
    const { ok, data } = await inFlight;
    if (ok) {
      saveStatus.textContent = `Draft saved ${new Date().toLocaleTimeString()}`;
      showErrors({});
    } else {
      giveBackSeconds(seconds);
      dirty = dirty || wasDirty;
      showErrors(data.errors);
    }
  } catch (e) {
    giveBackSeconds(seconds);
    dirty = dirty || wasDirty;
    saveStatus.textContent = "Offline — will retry";
  } finally {
    inFlight = null;
  }
}

function scheduleSave() {
  dirty = true;
  saveStatus.textContent = "Editing…";
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveDraft, 700);
}

async function submitRead() {
  if (config.readOnly) return;
  const missing = missingFields();
  if (missing.length) {
    errorsEl.textContent = `Still missing: ${missing.map((m) => m.words).join(", ")}.`;
    const first = document.getElementById(missing[0].name);
    if (first) first.scrollIntoView({ block: "nearest" });
    return;
  }
  clearTimeout(saveTimer);
  if (inFlight) await inFlight.catch(() => {});
  const seconds = takeActiveSeconds();
  const button = document.getElementById("submit-read");
  button.disabled = true;
  try {
    const { ok, data } = await post(config.submitUrl, { ...formData(), active_seconds: seconds });
    if (ok) {
      submitted = true;
      window.location.assign(data.next_url);
      return;
    }
    giveBackSeconds(seconds);
    showErrors(data.errors);
  } catch (e) {
    giveBackSeconds(seconds);
    showErrors({ __all__: ["Could not reach the server; nothing was submitted."] });
  }
  button.disabled = false;
}

if (config.readOnly) {
  for (const el of form.elements) el.disabled = true;
} else {
  form.addEventListener("input", scheduleSave);
  form.addEventListener("change", scheduleSave);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitRead();
  });
  // A periodic save keeps the credited time current even when nothing is typed.
  setInterval(() => {
    if (document.visibilityState === "visible") saveDraft();
  }, 30000);
  window.addEventListener("pagehide", () => saveDraft({ keepalive: true }));
}

function pick(name, value) {
  const input = form.querySelector(`input[name=${name}][value="${value}"]`);
  if (input && !input.disabled) {
    input.checked = true;
    scheduleSave();
  }
}

// --- viewer ----------------------------------------------------------------------------------
// Slice position in mm along the slice normal (served relative to the gland centre, the same
// in every arm), from the image's own geometry.
function slicePositionMm() {
  const plane = core.metaData.get("imagePlaneModule", state.primary.getCurrentImageId());
  if (!plane || !plane.imagePositionPatient || !plane.rowCosines) return null;
  const r = plane.rowCosines;
  const c = plane.columnCosines;
  const n = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
  const p = plane.imagePositionPatient;
  return p[0] * n[0] + p[1] * n[1] + p[2] * n[2];
}

function updateSliceCounter() {
  if (!state.primary) return;
  const mm = slicePositionMm();
  const where = mm === null ? "" : ` · ${mm >= 0 ? "+" : ""}${mm.toFixed(1)} mm`;
  sliceEl.textContent = `Slice ${state.primary.getCurrentImageIdIndex() + 1} / ${state.total}${where}`;
  state.slicePositionMm = mm;
}

function applyPreset(index) {
  const preset = state.presets[index];
  if (!preset || !state.primary) return;
  state.primary.setProperties({ voiRange: { lower: preset.lower, upper: preset.upper } });
  state.primary.render();
}

function resetView() {
  if (!state.primary) return;
  state.primary.resetCamera();
  presetEl.value = "0";
  applyPreset(0);
  syncUnderlay();
}

function syncUnderlay() {
  // Registered T2 and TRUS share one display grid, so the same slice index and camera line up.
  if (!state.underlay || !state.primary || state.syncing) return;
  state.syncing = true;
  try {
    const index = state.primary.getCurrentImageIdIndex();
    if (state.underlay.getCurrentImageIdIndex() !== index) state.underlay.setImageIdIndex(index);
    state.underlay.setCamera(state.primary.getCamera());
    state.underlay.render();
  } finally {
    state.syncing = false;
  }
}

function scrollBy(delta) {
  if (!state.primary) return;
  const next = Math.min(state.total - 1, Math.max(0, state.primary.getCurrentImageIdIndex() + delta));
  state.primary.setImageIdIndex(next);
}

async function fetchManifest(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`manifest HTTP ${response.status}`);
  return response.json();
}

async function start() {
  const [primaryManifest, underlayManifest] = await manifestsPromise;
  state.timings.manifests = Math.round(performance.now());
  await core.init();
  tools.init();
  dicomImageLoader.init({ maxWebWorkers: Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) });

  const { ViewportType, Events } = core.Enums;
  const engine = new core.RenderingEngine("mritrus-reader");
  const viewports = [{ viewportId: "primary", type: ViewportType.STACK, element: document.getElementById("viewport-primary"), defaultOptions: { background: [0, 0, 0] } }];
  if (underlayManifest) {
    viewports.unshift({ viewportId: "underlay", type: ViewportType.STACK, element: document.getElementById("viewport-underlay"), defaultOptions: { background: [0, 0, 0] } });
  }
  engine.setViewports(viewports);
  const primary = engine.getViewport("primary");
  state.primary = primary;
  state.total = primaryManifest.imageIds.length;
  state.presets = primaryManifest.presets;
  presetEl.innerHTML = "";
  state.presets.forEach((p, i) => presetEl.add(new Option(p.name, String(i))));
  presetEl.addEventListener("change", () => applyPreset(Number(presetEl.value)));

  const { WindowLevelTool, PanTool, ZoomTool, StackScrollTool, ToolGroupManager, Enums: tEnums } = tools;
  for (const Tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) tools.addTool(Tool);
  const group = ToolGroupManager.createToolGroup("mritrus-reader-tools");
  for (const Tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) group.addTool(Tool.toolName);
  const MB = tEnums.MouseBindings;
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MB.Primary }] });
  group.setToolActive(PanTool.toolName, {
    bindings: [{ mouseButton: MB.Auxiliary }, { mouseButton: MB.Primary, modifierKey: tEnums.KeyboardBindings.Shift }],
  });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MB.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MB.Wheel }] });
  group.addViewport("primary", "mritrus-reader");

  // After a reload: where the reader was; else where the lesion was marked; else the middle.
  state.view = attachState({ viewport: primary, Events, opacity: document.getElementById("opacity") });
  const savedSlice = state.view.saved ? state.view.saved.slice : null;
  // The server's preview shows the default first slice: not what a restored view will show.
  if (Number.isInteger(savedSlice) && String(savedSlice) !== previewEl.dataset.slice) previewEl.remove();
  const middle = Number.isInteger(savedSlice) && savedSlice < state.total ? savedSlice : config.mark ? config.mark.slice : Math.floor(state.total / 2);
  const element = primary.element;
  element.addEventListener(Events.STACK_NEW_IMAGE, () => {
    updateSliceCounter();
    syncUnderlay();
    if (state.mark) state.mark.draw();
  });
  element.addEventListener(Events.CAMERA_MODIFIED, () => {
    syncUnderlay();
    if (state.overlay) state.overlay.update();
    if (state.mark) state.mark.draw();
  });
  element.addEventListener("contextmenu", (e) => e.preventDefault());

  if (underlayManifest) {
    const underlay = engine.getViewport("underlay");
    state.underlay = underlay;
    await underlay.setStack(underlayManifest.imageIds, middle);
    const p = underlayManifest.presets[0];
    if (p) underlay.setProperties({ voiRange: { lower: p.lower, upper: p.upper } });
    underlay.render();
    const slider = document.getElementById("opacity");
    const out = document.getElementById("opacity-value");
    const setOpacity = () => {
      document.getElementById("viewport-primary").style.opacity = String(slider.value / 100);
      out.textContent = `${slider.value} %`;
    };
    slider.addEventListener("input", setOpacity);
    setOpacity();
  }
  state.timings.viewportsReady = Math.round(performance.now());
  await primary.setStack(primaryManifest.imageIds, middle);
  applyPreset(0);
  state.restored = state.view.restore();
  syncUnderlay();
  updateSliceCounter();
  state.cine = attachCine({ viewport: primary, total: state.total, button: document.getElementById("btn-cine") });
  const frame = document.getElementById("frame-primary");
  state.overlay = attachOverlay({ viewport: primary, container: frame, prefix: "primary" });
  state.overlay.update();
  state.mark = attachMark({ viewport: primary, container: frame, config, form, onChange: scheduleSave });
  state.mark.draw();
  state.layout = await attachLayouts({ state, core, engine, group, primary, manifest: primaryManifest, Events });
  statusEl.hidden = true;
  state.timings.preview = previewShownMs();
  previewEl.remove();
  state.ready = true;
  // Milliseconds from navigation start to the first rendered image (read by bench/).
  state.firstImageMs = Math.round(performance.now());
  document.body.dataset.viewerReady = "1";
  // Decode the rest of the stack in the background so scrolling never waits or flickers.
  for (const imageId of primaryManifest.imageIds) core.imageLoader.loadAndCacheImage(imageId).catch(() => {});
  if (underlayManifest) for (const imageId of underlayManifest.imageIds) core.imageLoader.loadAndCacheImage(imageId).catch(() => {});

  window.addEventListener("resize", async () => {
    await resizeWhenIdle(engine);
    syncUnderlay();
    if (state.overlay) state.overlay.update();
    if (state.mark) state.mark.draw();
    if (state.mpr) state.mpr.draw();
  });
}

document.getElementById("btn-reset").addEventListener("click", resetView);
const help = attachHelp({ dialog: document.getElementById("shortcuts"), button: document.getElementById("btn-help") });

attachKeys({
  submit: submitRead,
  scroll: scrollBy,
  reset: resetView,
  pick,
  help: () => help.toggle(),
  layout: () => state.layout && state.layout.next(),
  cine: () => state.cine && state.cine.toggle(),
  mark: () => state.mark && state.mark.toggle(),
  measure: () => state.mark && state.mark.measure(),
});

start().catch((error) => {
  previewEl.remove();
  state.error = String(error);
  statusEl.hidden = false;
  statusEl.textContent = `The images could not be loaded: ${error.message || error}`;
  console.error(error);
});
