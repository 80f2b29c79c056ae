/* Live progress: polls the small JSON endpoints every 2 s while something is queued or running.
   A static file, not inline: the Content-Security-Policy allows scripts from 'self' only. */
(function () {
  "use strict";
  function setBar(root, data) {
    var bar = root.querySelector("progress");
    if (bar) { bar.value = data.progress; bar.textContent = data.progress + "%"; }
    var fields = root.querySelectorAll("[data-field]");
    for (var i = 0; i < fields.length; i++) {
      var name = fields[i].getAttribute("data-field");
      var value = data[name];
      fields[i].textContent = (value === null || value === undefined) ? "" : String(value);
    }
    root.setAttribute("data-status", data.status);
  }
  function pollJob(root) {
    var url = root.getAttribute("data-job-status-url");
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        setBar(root, data);
        if (data.active) { setTimeout(function () { pollJob(root); }, 2000); }
        else if (root.hasAttribute("data-reload-when-done")) { window.location.reload(); }
      })
      .catch(function () { setTimeout(function () { pollJob(root); }, 5000); });
  }
  function pollCohort(root) {
    var url = root.getAttribute("data-cohort-jobs-url");
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var bar = root.querySelector("progress.cohort-progress");
        if (bar) { bar.value = data.progress; bar.textContent = data.progress + "%"; }
        var counts = root.querySelector("[data-field=counts]");
        if (counts) {
          counts.textContent = Object.keys(data.counts).filter(function (k) { return data.counts[k]; })
            .map(function (k) { return data.counts[k] + " " + k; }).join(", ") || "no jobs yet";
        }
        data.cases.forEach(function (c) {
          var cells = document.querySelectorAll(
            "[data-case-job='" + c.case + "'], .case-job-state[data-field='case-" + c.case + "']");
          for (var i = 0; i < cells.length; i++) {
            var job = c.jobs[0];
            cells[i].innerHTML = "";
            if (!job) { cells[i].textContent = "not registered"; continue; }
            var a = document.createElement("a");
            a.href = job.url; a.textContent = job.status + (job.stage && job.active ? " · " + job.stage : "");
            var p = document.createElement("progress");
            p.max = 100; p.value = job.progress;
            cells[i].appendChild(a); cells[i].appendChild(document.createTextNode(" "));
            cells[i].appendChild(p);
          }
        });
        if (data.active) { setTimeout(function () { pollCohort(root); }, 2000); }
      })
      .catch(function () { setTimeout(function () { pollCohort(root); }, 5000); });
  }
  document.querySelectorAll("[data-job-status-url]").forEach(function (root) {
    var st = root.getAttribute("data-status");
    if (st === "queued" || st === "running") { pollJob(root); }
  });
  document.querySelectorAll("[data-cohort-jobs-url]").forEach(pollCohort);
})();
