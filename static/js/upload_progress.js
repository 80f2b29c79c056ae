// Cohort upload with progress: the bytes sent while the zip uploads, then the cases imported so far
// (polled from /imports/progress.json by a key this page makes up). Without JavaScript the form
// posts as usual; any failure here falls back to that.
(function () {
  "use strict";
  const form = document.querySelector("form[data-upload-progress]");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  const box = document.getElementById("upload-progress");
  const bar = box.querySelector("progress");
  const text = box.querySelector("[data-progress-text]");
  const progressUrl = form.dataset.progressUrl;

  function mb(bytes) {
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function show(value, max, message) {
    box.hidden = false;
    if (max) {
      bar.max = max;
      bar.value = value;
    } else {
      bar.removeAttribute("value"); // indeterminate while the total is not known yet
    }
    text.textContent = message;
  }

  form.addEventListener("submit", function (event) {
    const key = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random()).slice(2);
    form.querySelector("input[name=upload_key]").value = key;
    const data = new FormData(form);
    const xhr = new XMLHttpRequest();
    let timer = null;
    event.preventDefault();
    form.querySelector("button[type=submit]").disabled = true;

    function poll() {
      fetch(progressUrl + "?key=" + encodeURIComponent(key), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          if (!p.found) {
            show(0, 0, "Upload received; reading the input…");
          } else {
            show(p.done, p.total || 0, "Importing: " + p.done + (p.total ? " of " + p.total : "") +
              " case(s) done (" + p.accepted + " accepted, " + p.rejected + " rejected, " + p.skipped + " skipped)");
          }
        })
        .catch(function () { /* the next poll tries again */ });
    }

    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        show(e.loaded, e.total, "Uploading: " + mb(e.loaded) + " of " + mb(e.total) +
          " (" + Math.round(100 * e.loaded / e.total) + " %)");
      }
    });
    xhr.upload.addEventListener("load", function () {
      show(0, 0, "Upload received; importing…");
      timer = window.setInterval(poll, 1000);
    });
    xhr.addEventListener("load", function () {
      if (timer) window.clearInterval(timer);
      if (xhr.responseURL && xhr.responseURL.indexOf(form.action) !== 0) {
        window.location.assign(xhr.responseURL); // the import report
      } else {
        document.open();
        document.write(xhr.responseText); // the form again, with its errors
        document.close();
      }
    });
    xhr.addEventListener("error", function () {
      if (timer) window.clearInterval(timer);
      show(0, 0, "The upload failed (network). Try again.");
      form.querySelector("button[type=submit]").disabled = false;
    });
    xhr.open("POST", form.action);
    xhr.send(data);
  });
})();
