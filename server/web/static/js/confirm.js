// A yes/no question before something that cannot be undone (deleting a user or a token), in the page's
// #confirm-dialog (templates/_confirm_dialog.html). Resolves true when the person confirmed.
import { byId } from "./elements.js";

export function confirmAction({ title, text, confirmLabel }) {
  const dialog = byId("confirm-dialog");
  byId("confirm-title").textContent = title;
  byId("confirm-text").textContent = text;
  byId("confirm-button").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}
