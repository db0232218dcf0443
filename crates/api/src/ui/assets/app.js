// Hookline dashboard: the only script, and every page works without it.
// - [data-select-all=NAME]: a checkbox that checks or unchecks every checkbox named NAME.
// - [data-copy=ID]: a button that copies the value of the input with that id.
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  for (const box of document.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`)) {
    box.checked = all.checked;
  }
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Press Ctrl+C to copy";
  }
});
for (const button of document.querySelectorAll("[data-copy]")) button.hidden = false;
