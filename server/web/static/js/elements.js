// Building and updating the DOM without innerHTML.

export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing element #${id}`);
  return node;
}

// A live region: always in the document, empty when there is nothing to say.
export function say(region, text, kind = "info") {
  region.classList.remove("status-error", "status-success", "status-info");
  region.classList.add(`status-${kind}`);
  region.textContent = text;
}

export function quiet(region) {
  region.textContent = "";
}

// Marks a field as wrong (announced through the region it is described by) and moves focus to it.
export function flagField(input) {
  input.setAttribute("aria-invalid", "true");
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"), { once: true });
  input.focus();
  input.select?.();
}

export function unflagFields(container) {
  for (const input of container.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// Disables a form's buttons (or one button) while a request runs; fields stay focusable for messages.
export async function whileBusy(target, work) {
  const buttons = target.matches("form") ? [...target.querySelectorAll("button")] : [target];
  const wasDisabled = buttons.map((button) => button.disabled);
  target.setAttribute("aria-busy", "true");
  for (const button of buttons) button.disabled = true;
  try {
    return await work();
  } finally {
    buttons.forEach((button, index) => {
      button.disabled = wasDisabled[index];
    });
    target.removeAttribute("aria-busy");
  }
}

// The page's controls are disabled in the HTML until its script has wired them ([data-needs-script]): a
// click before then would do nothing, and a password form would submit itself into the address bar.
export function enableControls(root = document) {
  for (const control of root.querySelectorAll("[data-needs-script]")) {
    control.removeAttribute("data-needs-script");
    control.disabled = false;
  }
}

// A table cell that carries its column's name for the stacked phone layout.
export function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

// "—" for a value that is not there; the stacked phone layout leaves such a line out.
export function noValue() {
  return h("span", { class: "muted no-value", text: "—" });
}

export function badge(text, kind = "neutral") {
  return h("span", { class: `badge badge-${kind}`, text });
}

// Closes <dialog>s from their [data-close-dialog] buttons.
export function wireDialogs() {
  for (const button of document.querySelectorAll("dialog [data-close-dialog]")) {
    button.addEventListener("click", () => button.closest("dialog").close("cancel"));
  }
}
