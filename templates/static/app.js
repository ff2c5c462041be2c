// lethe: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // Ask before irreversible actions.
  document.querySelectorAll("form#execute-form, form[action$='/deny']").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      var what = f.id === "execute-form" ? "Execute this erasure? It cannot be undone." : "Deny this request?";
      if (!window.confirm(what)) { e.preventDefault(); }
    });
  });
  // Disable a form's button once submitted, so a double click does not post twice.
  document.querySelectorAll("form[method='post']").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (e.defaultPrevented) { return; }
      f.querySelectorAll("button[type='submit']").forEach(function (b) {
        setTimeout(function () { b.disabled = true; b.setAttribute("aria-busy", "true"); }, 0);
      });
    });
  });
  // Verify page: show the chosen file's name next to the upload field.
  var file = document.getElementById("file");
  if (file) {
    file.addEventListener("change", function () {
      var ta = document.getElementById("jws");
      if (ta && file.files.length > 0) { ta.placeholder = "Will verify the uploaded file " + file.files[0].name; }
    });
  }
})();
