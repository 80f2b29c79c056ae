// Viewer state kept across reloads (slice, window/level, zoom/pan, opacity, layout), cine, and
// the keyboard-shortcut overlay. The state lives in this browser's localStorage under the
// assignment's own URL: nothing of it reaches the server or another assignment.

const PREFIX = "mritrus:view:";

export function attachState({ viewport, Events, opacity }) {
  const key = PREFIX + window.location.pathname;
  let saved = null;
  try {
    saved = JSON.parse(window.localStorage.getItem(key) || "null");
  } catch (e) {
    saved = null;
  }
  let timer = null;

  function snapshot() {
    const camera = viewport.getCamera();
    const { voiRange } = viewport.getProperties();
    return {
      slice: viewport.getCurrentImageIdIndex(),
      voi: voiRange ? { lower: voiRange.lower, upper: voiRange.upper } : null,
      camera: {
        parallelScale: camera.parallelScale,
        focalPoint: camera.focalPoint,
        position: camera.position,
        viewUp: camera.viewUp,
      },
      opacity: opacity ? Number(opacity.value) : null,
      layout: document.getElementById("layout")?.value || "1x1",
    };
  }

  function save() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        window.localStorage.setItem(key, JSON.stringify(snapshot()));
      } catch (e) {
        /* storage full or blocked: the viewer works without it */
      }
    }, 250);
  }

  // Applied once the stack is shown; returns true when there was something to restore.
  function restore() {
    if (!saved) return false;
    if (saved.voi) viewport.setProperties({ voiRange: saved.voi });
    if (saved.camera && saved.camera.parallelScale) viewport.setCamera(saved.camera);
    if (opacity && saved.opacity !== null && saved.opacity !== undefined) {
      opacity.value = String(saved.opacity);
      opacity.dispatchEvent(new Event("input"));
    }
    viewport.render();
    return true;
  }

  const element = viewport.element;
  for (const name of [Events.STACK_NEW_IMAGE, Events.CAMERA_MODIFIED, Events.VOI_MODIFIED]) {
    element.addEventListener(name, save);
  }
  if (opacity) opacity.addEventListener("input", save);
  return { saved, restore, save, forget: () => window.localStorage.removeItem(key) };
}

// Cine: steps through the slices, looping, until stopped (button, C, or any scroll by hand).
export function attachCine({ viewport, total, button, fps = 8 }) {
  let timer = null;
  function stop() {
    clearInterval(timer);
    timer = null;
    if (button) {
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Play (C)";
    }
  }
  function start() {
    timer = setInterval(() => {
      const next = (viewport.getCurrentImageIdIndex() + 1) % total;
      viewport.setImageIdIndex(next);
    }, 1000 / fps);
    if (button) {
      button.setAttribute("aria-pressed", "true");
      button.textContent = "Stop (C)";
    }
  }
  const toggle = () => (timer ? stop() : start());
  if (button) button.addEventListener("click", toggle);
  return { toggle, stop, playing: () => timer !== null };
}

export function attachHelp({ dialog, button }) {
  const toggle = () => (dialog.open ? dialog.close() : dialog.showModal());
  if (button) button.addEventListener("click", toggle);
  return { toggle };
}


// The reader's keyboard: scoring keys, slices, view tools. Off while typing in a text field, and
// while the shortcut list is open (except "?" to close it; the dialog handles Esc itself).
export function attachKeys(actions) {
  const letters = { p: ["zone", "pz"], t: ["zone", "tz"], n: ["zone", "none"], l: ["side", "left"], r: ["side", "right"], b: ["side", "bilateral"] };
  const tools = { "?": actions.help, v: actions.layout, c: actions.cine, m: actions.mark, d: actions.measure };
  document.addEventListener("keydown", (e) => {
    const typing = e.target instanceof HTMLTextAreaElement || (e.target instanceof HTMLInputElement && e.target.type !== "radio" && e.target.type !== "range");
    if (e.ctrlKey && e.key === "Enter") {
      e.preventDefault();
      actions.submit();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (document.getElementById("shortcuts").open && e.key !== "?") return;
    const digit = /^Digit([0-9])$/.exec(e.code)?.[1];
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (e.key === "ArrowUp" || e.key === "ArrowLeft") {
      e.preventDefault();
      actions.scroll(-1);
    } else if (e.key === "ArrowDown" || e.key === "ArrowRight") {
      e.preventDefault();
      actions.scroll(1);
    } else if (e.key === "Escape") {
      actions.reset();
    } else if (tools[key]) {
      tools[key]();
    } else if (digit && e.shiftKey && digit >= "1" && digit <= "7") {
      actions.pick("likert", digit);
    } else if (digit && !e.shiftKey && digit >= "1" && digit <= "5") {
      actions.pick("pirads", digit);
    } else if (digit === "0") {
      actions.pick("side", "none");
    } else if (letters[key]) {
      actions.pick(...letters[key]);
    }
  });
}
