// Inline the analysis figures: fetch each server-rendered SVG and put it into the page as SVG
// (text stays selectable, the chart scales with the card). data-state tells tests and users
// whether a figure is loading, ready or failed.
(function () {
  "use strict";

  function show(holder, message) {
    holder.dataset.state = "error";
    holder.textContent = message;
    holder.classList.add("error");
  }

  async function inline(holder) {
    const url = holder.dataset.svgSrc;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.startsWith("image/svg+xml")) {
        show(holder, "This figure could not be drawn (HTTP " + response.status + ").");
        return;
      }
      // Matplotlib's <style> element is inline CSS, which the Content-Security-Policy blocks
      // (Chromium reports it even in a parsed, never displayed document): it goes before parsing,
      // and its rules (line joins and caps) are in analysis.css instead.
      const text = (await response.text()).replace(/<style[^>]*>[\s\S]*?<\/style>/g, "");
      const doc = new DOMParser().parseFromString(text, "image/svg+xml");
      const svg = doc.documentElement;
      if (!svg || svg.nodeName.toLowerCase() !== "svg" || doc.querySelector("parsererror")) {
        show(holder, "This figure came back malformed.");
        return;
      }
      svg.removeAttribute("width");
      svg.removeAttribute("height");
      svg.setAttribute("role", "img");
      holder.replaceChildren(document.importNode(svg, true));
      holder.dataset.state = "ready";
    } catch (err) {
      show(holder, "This figure could not be loaded: " + err);
    }
  }

  document.querySelectorAll("[data-svg-src]").forEach(inline);
})();
