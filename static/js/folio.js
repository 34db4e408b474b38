// Folio: the little JavaScript the pages need. Everything works without it, except adding
// line rows and live totals, which htmx and this file provide.
document.addEventListener("click", (event) => {
  const add = event.target.closest("[data-add-line]");
  if (add) {
    const form = add.closest("form");
    const total = form.querySelector("input[name$='-TOTAL_FORMS']");
    const index = Number(total.value);
    const html = form.querySelector("#line-template").innerHTML.replaceAll("__prefix__", index);
    form.querySelector("#line-rows").insertAdjacentHTML("beforeend", html);
    total.value = index + 1;
    form.querySelector("#line-rows tr:last-child input[type=text]")?.focus();
    form.dispatchEvent(new Event("lines-changed"));
    return;
  }
  const remove = event.target.closest("[data-remove-line]");
  if (remove) {
    const row = remove.closest("tr");
    const form = row.closest("form");
    const box = row.querySelector("input[name$='-DELETE']");
    if (box) box.checked = true;
    row.hidden = true;
    form.dispatchEvent(new Event("lines-changed"));
    return;
  }
  const move = event.target.closest("[data-move-line]");
  if (move) {
    // Swap the row with the next shown row above or below, then number the rows' ORDER.
    const row = move.closest("tr");
    const step = move.dataset.moveLine === "up" ? "previousElementSibling" : "nextElementSibling";
    let other = row[step];
    while (other && other.hidden) other = other[step];
    if (!other) return;
    if (step === "previousElementSibling") other.before(row); else other.after(row);
    row.parentElement.querySelectorAll("tr").forEach((each, index) => {
      const order = each.querySelector("input[name$='-ORDER']");
      if (order) order.value = index + 1;
    });
    move.focus();
    return;
  }
  const open = event.target.closest("[data-open-dialog]");
  if (open) {
    document.getElementById(open.dataset.openDialog)?.showModal();
    return;
  }
  const close = event.target.closest("[data-close-dialog]");
  if (close) close.closest("dialog")?.close();
});

document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
  // Ticking a line to credit, or changing the quantity to credit, chooses "only these
  // lines"; typing an amount chooses "an amount".
  const line = event.target.matches("[data-choose-line]")
    && document.getElementById(event.target.dataset.chooseLine);
  if (line) line.checked = true;
  if ((event.target.matches("[data-choose-lines]") && event.target.checked) || line) {
    const lines = event.target.form.querySelector("#what-lines");
    if (lines) lines.checked = true;
  }
  // A line without VAT (any category but the standard rate) is taxed at 0 %.
  if (event.target.matches(".line-row [name$=tax_category]") && event.target.value !== "S") {
    const rate = event.target.closest(".line-row").querySelector("[name$=tax_rate]");
    if (rate) rate.value = "0";
  }
  if (event.target.matches("#credit-form [name=amount], #credit-form [name=rate]")) {
    const amount = event.target.form.querySelector("#what-amount");
    if (amount) amount.checked = true;
  }
}, true);  // capture: before htmx reads the form

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
    return;
  }
  // A form sent once is not sent again by a second click while the page loads.
  if (event.target.matches("[data-once]")) {
    if (event.target.dataset.sent) event.preventDefault();
    event.target.dataset.sent = "1";
  }
});

// Back to a page the browser kept: its forms can be sent again (the server knows them).
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-sent]").forEach((form) => delete form.dataset.sent);
});
