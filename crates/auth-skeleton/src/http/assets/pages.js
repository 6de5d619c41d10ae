// Drives the three pages that mailed links open. Loading a page spends nothing: the token is
// sent to the JSON route only when the person confirms (mail scanners that fetch links do not).
"use strict";

(function () {
  const form = document.querySelector("form[data-route]");
  if (!form) return;
  const status = document.getElementById("status");
  const token = new URLSearchParams(window.location.search).get("token") || "";

  function show(message, ok) {
    status.textContent = message;
    status.className = ok ? "ok" : "error";
  }

  if (!token) {
    show("This link is incomplete. Open the link from the email again.", false);
    form.querySelector("button").disabled = true;
    return;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const body = { token: token };
    const password = form.querySelector("input[name=new_password]");
    if (password) {
      const repeat = form.querySelector("input[name=repeat_password]");
      if (password.value !== repeat.value) {
        show("The two passwords differ.", false);
        return;
      }
      body.new_password = password.value;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch(form.dataset.route, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
      });
      if (response.ok) {
        // The token is spent; keep it out of the history as well.
        window.history.replaceState(null, "", window.location.pathname);
        form.hidden = true;
        show(form.dataset.done, true);
        return;
      }
      let detail = "Something went wrong. Try again later.";
      try {
        const problem = await response.json();
        if (problem && problem.detail) detail = problem.detail;
      } catch (_) {}
      show(detail, false);
      button.disabled = false;
    } catch (_) {
      show("The server could not be reached. Try again.", false);
      button.disabled = false;
    }
  });
})();
