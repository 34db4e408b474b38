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
});

document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
