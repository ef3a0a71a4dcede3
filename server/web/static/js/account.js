// The account page: the user's sign-in methods, adding an authenticator app or a security key, removing.
import "./topbar.js";
import { api, signOut } from "./api.js";
import {
  badge,
  byId,
  cell,
  enableControls,
  flagField,
  h,
  noValue,
  quiet,
  say,
  unflagFields,
  whileBusy,
  wireDialogs,
} from "./elements.js";
import { countdown, formatCountdown, formatTime, givenName, groupSecret, tokenKind, tokenName } from "./format.js";
import { describeProblem, describeWebauthnError } from "./messages.js";
import { createCredential, webauthnAvailable } from "./webauthn.js";

const enrollOnly = byId("main").dataset.scope === "enroll";
const status = byId("account-status");
const table = byId("token-table");
const empty = byId("tokens-empty");
const choices = { app: byId("add-app"), key: byId("add-key") };
const panels = { app: byId("app-form"), key: byId("key-form") };
const setup = byId("app-setup");
const confirmForm = byId("app-confirm");
const codeInput = byId("app-code");
const removeDialog = byId("remove-dialog");

let pending = null; // the authenticator app being set up: {id, type, ...}
let stopCountdown = () => {};
let activeTokens = 0;

function tokenStatus(token) {
  if (token.locked) return badge("Locked", "danger");
  if (token.state === "active") return badge("Active", "success");
  if (token.state === "pending") return badge("Not confirmed", "warning");
  return badge("Disabled", "neutral");
}

function nameOf(token) {
  const name = givenName(token);
  return name ? h("span", { class: "strong", text: name }) : noValue();
}

function tokenRow(token) {
  const remove =
    enrollOnly || token.state === "pending"
      ? null
      : h("button", {
          type: "button",
          class: "button button-quiet button-small",
          "aria-label": `Remove ${tokenName(token)}`,
          onclick: () => confirmRemoval(token),
          text: "Remove",
        });
  return h(
    "tr",
    { dataset: { tokenId: token.id } },
    cell("Type", tokenKind(token.type)),
    cell("Name", nameOf(token)),
    cell("Added", formatTime(token.created_at)),
    cell("Last used", formatTime(token.last_used_at)),
    cell("Status", tokenStatus(token)),
    cell("", remove),
  );
}

async function loadTokens() {
  const { tokens } = await api("/api/v1/tokens");
  const shown = tokens.filter((token) => token.state !== "pending" || token.id === pending?.id);
  activeTokens = shown.filter((token) => token.state === "active").length;
  table.tBodies[0].replaceChildren(...shown.map(tokenRow));
  table.hidden = shown.length === 0;
  empty.hidden = shown.length !== 0;
}

function confirmRemoval(token) {
  const last = activeTokens === 1 && token.state === "active";
  byId("remove-text").textContent =
    `You will no longer be able to sign in with “${tokenName(token)}”.` +
    (last ? " It is your only sign-in method: next time you will have to add a new one." : "");
  removeDialog.returnValue = "";
  removeDialog.onclose = async () => {
    if (removeDialog.returnValue !== "remove") return;
    try {
      await api(`/api/v1/tokens/${token.id}`, { method: "DELETE" });
      say(status, `“${tokenName(token)}” was removed.`, "success");
      await loadTokens();
    } catch (problem) {
      say(status, describeProblem(problem), "error");
    }
  };
  removeDialog.showModal();
}

function openPanel(which) {
  closePanels();
  choices[which].setAttribute("aria-expanded", "true");
  panels[which].hidden = false;
  panels[which].querySelector("input").focus();
}

function closePanels() {
  for (const [which, panel] of Object.entries(panels)) {
    panel.hidden = true;
    panel.reset();
    choices[which].setAttribute("aria-expanded", "false");
  }
}

function endSetup() {
  stopCountdown();
  pending = null;
  setup.hidden = true;
  byId("add-choices").hidden = false;
}

async function added(what) {
  say(status, `${what} was added.`, "success");
  await loadTokens();
  if (enrollOnly) {
    byId("enroll-notice-title").textContent = "Sign in again to finish";
    byId("enroll-notice-text").textContent =
      "You're all set. Sign in again with your new sign-in method to use your account.";
    byId("enroll-notice").classList.add("notice-success");
    const again = byId("sign-in-again");
    again.hidden = false;
    again.focus();
  }
}

async function startApp(event) {
  event.preventDefault();
  quiet(status);
  const form = panels.app;
  const options = {
    type: form.elements.type.value,
    digits: Number(form.elements.digits.value),
    algorithm: form.elements.algorithm.value,
    description: form.elements.description.value.trim(),
  };
  await whileBusy(form, async () => {
    try {
      pending = await api("/api/v1/tokens", { method: "POST", json: options });
    } catch (problem) {
      say(status, describeProblem(problem), "error");
      return;
    }
    pending.description = options.description;
    closePanels();
    byId("add-choices").hidden = true;
    byId("app-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(pending.qr_svg)}`;
    byId("app-secret").textContent = groupSecret(pending.secret);
    codeInput.value = "";
    setup.hidden = false;
    byId("app-setup-title").focus();
    stopCountdown = countdown(
      pending.expires_in,
      (left) => {
        byId("app-expiry").textContent = `This setup expires in ${formatCountdown(left)}.`;
      },
      () => {
        endSetup();
        say(status, describeProblem({ name: "ApiError", code: "enrollment_expired" }), "error");
      },
    );
  });
}

async function confirmApp(event) {
  event.preventDefault();
  unflagFields(confirmForm);
  const code = codeInput.value.replace(/\s/g, "");
  if (!/^[0-9]{6,8}$/.test(code)) {
    say(status, "Enter the 6 or 8 digits the app shows.", "error");
    return flagField(codeInput);
  }
  await whileBusy(confirmForm, async () => {
    try {
      await api(`/api/v1/tokens/${pending.id}/activate`, { method: "POST", json: { otp: code } });
    } catch (problem) {
      say(status, describeProblem(problem), "error");
      if (problem.code === "enrollment_expired" || problem.code === "not_found") endSetup();
      else flagField(codeInput);
      return;
    }
    const name = pending.description ? `“${pending.description}”` : "Your authenticator app";
    endSetup();
    await added(name);
  });
}

async function cancelApp() {
  const abandoned = pending;
  endSetup();
  quiet(status);
  choices.app.focus();
  if (abandoned && !enrollOnly) {
    await api(`/api/v1/tokens/${abandoned.id}`, { method: "DELETE" }).catch(() => {});
  }
}

async function addKey(event) {
  event.preventDefault();
  quiet(status);
  if (!webauthnAvailable()) {
    say(status, "This browser cannot use security keys here.", "error");
    return;
  }
  const form = panels.key;
  const description = form.elements.description.value.trim();
  await whileBusy(form, async () => {
    let started;
    try {
      started = await api("/api/v1/tokens", { method: "POST", json: { type: "webauthn", description } });
      const credential = await createCredential(started.publicKey);
      await api(`/api/v1/tokens/${started.id}/activate`, { method: "POST", json: { credential } });
    } catch (problem) {
      const text = problem.name === "ApiError" ? describeProblem(problem) : describeWebauthnError(problem, "create");
      say(status, text, "error");
      if (started && !enrollOnly) await api(`/api/v1/tokens/${started.id}`, { method: "DELETE" }).catch(() => {});
      return;
    }
    closePanels();
    await added(description ? `“${description}”` : "Your security key");
  });
}

choices.app.addEventListener("click", () => openPanel("app"));
choices.key.addEventListener("click", () => openPanel("key"));
for (const button of document.querySelectorAll("[data-close-panel]")) {
  button.addEventListener("click", () => {
    const which = button.closest("form") === panels.app ? "app" : "key";
    closePanels();
    choices[which].focus();
  });
}
panels.app.addEventListener("submit", startApp);
panels.key.addEventListener("submit", addKey);
confirmForm.addEventListener("submit", confirmApp);
setup.querySelector("[data-cancel-setup]").addEventListener("click", cancelApp);
document.getElementById("sign-in-again")?.addEventListener("click", signOut);
wireDialogs();
enableControls();

try {
  await loadTokens();
} catch (problem) {
  say(status, describeProblem(problem), "error");
}
