/* Behaviour that used to be inline event handlers, which the Content-Security-Policy forbids
   (script-src 'self'): confirmation before a destructive form, and selects that submit their form. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) { el.form.submit(); }
  });
})();
