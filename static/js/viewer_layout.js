// Layouts: 1×1, 1×3 (MPR: axial, sagittal, coronal) and, in the fused arm, T2 and TRUS side by
// side. The choice is part of the state kept across reloads (viewer_extras.js).
import { attachFused } from "./viewer_fused.js";
import { attachMpr, resizeWhenIdle } from "./viewer_mpr.js";
import { attachOverlay } from "./viewer_overlay.js";

export { resizeWhenIdle };

export async function attachLayouts({ state, core, engine, group, primary, manifest, Events }) {
  const select = document.getElementById("layout");
  const onChange = () => state.view.save();
  state.mpr = attachMpr({ core, engine, group, primary, manifest, Events, attachOverlay, onChange });
  if (state.underlay) state.fused = attachFused({ primary, underlay: state.underlay, group, engine, Events, onChange, shared: state });

  async function setLayout(value) {
    if (state.fused) await state.fused.setMode(value === "side" ? "side" : "overlay");
    if (state.mpr) await state.mpr.setLayout(value === "1x3" ? "1x3" : "1x1");
    else await resizeWhenIdle(engine);
    state.overlay.update();
    state.mark.draw();
    state.view.save();
  }
  select.addEventListener("change", () => setLayout(select.value));
  const saved = state.view.saved && state.view.saved.layout;
  if (saved && saved !== "1x1" && [...select.options].some((o) => o.value === saved)) {
    select.value = saved;
    await setLayout(saved);
  }
  return {
    setLayout,
    next: () => {
      select.selectedIndex = (select.selectedIndex + 1) % select.options.length;
      return setLayout(select.value);
    },
  };
}
