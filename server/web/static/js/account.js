// The account page: the user's sign-in methods, adding an authenticator app or a security key, removing;
// recovery codes. Changes that need a recent second factor ask for it again first (step-up.js).
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
import { wirePasswordForm } from "./password.js";
import { StepUpCancelled, withStepUp } from "./step-up.js";
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
let shownTokens = [];

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

function renderTokens(shown) {
  shownTokens = shown;
  activeTokens = shown.filter((token) => token.state === "active").length;
  table.tBodies[0].replaceChildren(...shown.map(tokenRow));
  table.hidden = shown.length === 0;
  empty.hidden = shown.length !== 0;
}

async function loadTokens() {
  const { tokens } = await api("/api/v1/tokens");
  renderTokens(tokens.filter((token) => token.state !== "pending" || token.id === pending?.id));
}

// Says why a change did not happen; nothing when the person closed the step-up dialog themselves.
function failed(problem, describe = describeProblem) {
  if (problem instanceof StepUpCancelled) say(status, "Nothing was changed.", "info");
  else say(status, describe(problem), "error");
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
      await withStepUp("remove a sign-in method", () => api(`/api/v1/tokens/${token.id}`, { method: "DELETE" }));
      say(status, `“${tokenName(token)}” was removed.`, "success");
      await loadTokens();
    } catch (problem) {
      failed(problem);
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

// `token`: what the API answered when the setup started. An enroll-only session ends the moment its first
// factor activates, so that page cannot ask the API again: it shows the new token as active itself.
async function added(what, token) {
  say(status, `${what} was added.`, "success");
  if (!enrollOnly) {
    await loadTokens();
    return;
  }
  const now = Date.now() / 1000;
  const activated = { ...token, state: "active", created_at: token.created_at ?? now, last_used_at: null };
  renderTokens([...shownTokens, activated]);
  byId("add-choices").hidden = true;
  byId("enroll-notice-title").textContent = "Sign in again to finish";
  byId("enroll-notice-text").textContent =
    "You're all set. Sign in again with your new sign-in method to use your account.";
  byId("enroll-notice").classList.add("notice-success");
  const again = byId("sign-in-again");
  again.hidden = false;
  again.focus();
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
      pending = await withStepUp("add a sign-in method", () =>
        api("/api/v1/tokens", { method: "POST", json: options }),
      );
    } catch (problem) {
      failed(problem);
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
    const token = { ...pending, type: pending.type || panels.app.elements.type.value };
    const name = pending.description ? `“${pending.description}”` : "Your authenticator app";
    endSetup();
    await added(name, token);
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
      started = await withStepUp("add a sign-in method", () =>
        api("/api/v1/tokens", { method: "POST", json: { type: "webauthn", description } }),
      );
      const credential = await createCredential(started.publicKey);
      await api(`/api/v1/tokens/${started.id}/activate`, { method: "POST", json: { credential } });
    } catch (problem) {
      const describe = problem.name === "ApiError" ? describeProblem : (error) => describeWebauthnError(error, "create");
      failed(problem, describe);
      if (started && !enrollOnly) await api(`/api/v1/tokens/${started.id}`, { method: "DELETE" }).catch(() => {});
      return;
    }
    closePanels();
    const name = description ? `“${description}”` : "Your security key";
    await added(name, { ...started, type: "webauthn", description });
  });
}

// ---- Recovery codes (a full session only) ----------------------------------------------------------

let newCodes = [];

async function loadRecovery() {
  const { remaining } = await api("/api/v1/recovery-codes");
  byId("recovery-remaining").textContent =
    remaining === 0 ? "None left" : `${remaining} ${remaining === 1 ? "code" : "codes"} left`;
  byId("recovery-replace-note").hidden = remaining === 0;
}

async function generateCodes(event) {
  const button = event.currentTarget;
  quiet(status);
  await whileBusy(button, async () => {
    try {
      const created = await withStepUp("create new recovery codes", () =>
        api("/api/v1/recovery-codes", { method: "POST", json: {} }),
      );
      newCodes = created.codes;
    } catch (problem) {
      failed(problem);
      return;
    }
    byId("recovery-list").replaceChildren(...newCodes.map((code) => h("li", {}, h("code", { text: code }))));
    byId("recovery-start").hidden = true;
    byId("recovery-codes").hidden = false;
    byId("recovery-codes-title").focus();
    await loadRecovery();
  });
}

function downloadCodes() {
  const username = byId("main").dataset.username;
  const text = [
    `Tokenward recovery codes for ${username}`,
    `Created ${formatTime(Date.now() / 1000)} at ${window.location.origin}`,
    "",
    "Each code signs you in once when you have lost your sign-in methods.",
    "Codes created earlier no longer work.",
    "",
    ...newCodes.map((code, index) => `${String(index + 1).padStart(2, " ")}. ${code}`),
    "",
  ].join("\n");
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  const link = h("a", { href: url, download: `tokenward-recovery-codes-${username}.txt`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function hideCodes() {
  newCodes = [];
  byId("recovery-list").replaceChildren();
  byId("recovery-codes").hidden = true;
  byId("recovery-start").hidden = false;
  byId("generate-codes").focus();
}

if (!enrollOnly) {
  byId("generate-codes").addEventListener("click", generateCodes);
  byId("download-codes").addEventListener("click", downloadCodes);
  byId("hide-codes").addEventListener("click", hideCodes);
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
wirePasswordForm(status);
wireDialogs();
enableControls();

try {
  await loadTokens();
  if (!enrollOnly) await loadRecovery();
} catch (problem) {
  say(status, describeProblem(problem), "error");
}
