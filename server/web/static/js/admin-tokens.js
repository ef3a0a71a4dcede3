// Administration: any user's tokens — disable/enable, unlock, resync from two codes, assign imported ones,
// delete.
import "./topbar.js";
import { api } from "./api.js";
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
import { formatTime, givenName, tokenKind, tokenName } from "./format.js";
import { apiQuery, emptyRow, filterParams, readQuery, remember, renderPager, wireFilters } from "./listing.js";
import { confirmAction } from "./confirm.js";
import { describeProblem } from "./messages.js";
// Enabling, assigning or deleting a token needs the administrator's second factor answered recently
// (step-up.js asks for it when the API says so).
import { describeRefusal, withStepUp } from "./step-up.js";

const OTP_TYPES = new Set(["totp", "hotp"]);
const status = byId("admin-status");
const filters = byId("token-filters");
const tbody = byId("admin-token-table").tBodies[0];
const pager = byId("tokens-pager");
const resyncDialog = byId("resync-dialog");
const resyncForm = byId("resync-form");
const assignDialog = byId("assign-dialog");
const assignForm = byId("assign-form");
let offset = readQuery(filters);
let selected = null; // the token a dialog is about

function stateBadges(token) {
  const badges = [];
  if (token.state === "active") badges.push(badge("Active", "success"));
  else if (token.state === "pending") badges.push(badge("Pending", "warning"));
  else badges.push(badge("Disabled", "neutral"));
  if (token.locked) badges.push(badge(`Locked · ${token.fail_count} failures`, "danger"));
  return h("div", { class: "badges" }, badges);
}

function action(label, token, run, kind = "button-quiet") {
  return h("button", {
    type: "button",
    class: `button button-small ${kind}`,
    "aria-label": `${label} ${tokenName(token)}${token.user ? ` of ${token.user}` : ""}`,
    text: label,
    onclick: (event) => run(event.currentTarget, token),
  });
}

function tokenRow(token) {
  const actions = [];
  if (token.locked) actions.push(action("Unlock", token, unlock, "button-secondary"));
  if (token.state === "active") actions.push(action("Disable", token, (b, t) => setEnabled(b, t, false)));
  if (token.state === "disabled") actions.push(action("Enable", token, (b, t) => setEnabled(b, t, true)));
  if (OTP_TYPES.has(token.type) && token.state !== "pending") actions.push(action("Resync", token, openResync));
  if (!token.user) actions.push(action("Assign", token, openAssign, "button-secondary"));
  actions.push(action("Delete", token, deleteToken));
  const given = givenName(token);
  const name = given ? h("span", { class: "strong", text: given }) : noValue();
  const detail = token.serial && token.description ? h("span", { class: "muted small", text: `Serial ${token.serial}` }) : null;
  return h(
    "tr",
    { dataset: { tokenId: token.id } },
    cell("User", token.user ? token.user : h("em", { class: "muted", text: "Unassigned" })),
    cell("Type", tokenKind(token.type)),
    cell("Name", h("div", { class: "cell-stack" }, name, detail)),
    cell("State", stateBadges(token)),
    cell("Last used", formatTime(token.last_used_at)),
    cell("", h("div", { class: "row-actions" }, actions)),
  );
}

async function load(newOffset = offset) {
  offset = newOffset;
  const params = filterParams(filters);
  remember(params, offset);
  const page = await api(`/api/v1/admin/tokens?${apiQuery(params, offset)}`);
  tbody.replaceChildren(...(page.tokens.length ? page.tokens.map(tokenRow) : [emptyRow(6, "No tokens match.")]));
  byId("tokens-count").textContent = `${page.total} in all`;
  renderPager(pager, { offset, shown: page.tokens.length, total: page.total, noun: "tokens", go: load });
}

async function run(button, path, body, done) {
  quiet(status);
  await whileBusy(button, async () => {
    try {
      await withStepUp("change this token", () => api(path, { method: "POST", json: body }));
      say(status, done, "success");
    } catch (problem) {
      say(status, describeRefusal(problem), "error");
    }
  });
  await load();
}

async function deleteToken(button, token) {
  const owner = token.user ? ` of ${token.user}` : "";
  const confirmed = await confirmAction({
    title: "Delete this token?",
    text: `${tokenName(token)}${owner} is deleted for good: nobody can sign in with it any more.`,
    confirmLabel: "Delete",
  });
  if (!confirmed) return;
  quiet(status);
  await whileBusy(button, async () => {
    try {
      await withStepUp("delete a token", () => api(`/api/v1/admin/tokens/${token.id}`, { method: "DELETE" }));
      say(status, `${tokenName(token)}${owner} was deleted.`, "success");
    } catch (problem) {
      say(status, describeRefusal(problem), "error");
    }
  });
  await load();
}

function unlock(button, token) {
  return run(button, `/api/v1/admin/tokens/${token.id}/unlock`, {}, `${tokenName(token)} is unlocked.`);
}

function setEnabled(button, token, enabled) {
  const verb = enabled ? "enable" : "disable";
  return run(button, `/api/v1/admin/tokens/${token.id}/${verb}`, {}, `${tokenName(token)} is ${verb}d.`);
}

function openDialog(dialog, form, token, text) {
  selected = token;
  form.reset();
  unflagFields(form);
  quiet(form.querySelector("[role=alert]"));
  form.querySelector("p.muted").textContent = text;
  dialog.showModal();
}

function openResync(_button, token) {
  const owner = token.user ? ` of ${token.user}` : "";
  openDialog(resyncDialog, resyncForm, token, `${tokenName(token)}${owner}: ask for two consecutive codes.`);
}

function openAssign(_button, token) {
  openDialog(assignDialog, assignForm, token, `Who gets ${tokenName(token)}?`);
}

async function submitDialog(dialog, form, path, body, done) {
  const error = form.querySelector("[role=alert]");
  await whileBusy(form, async () => {
    try {
      await withStepUp("change this token", () => api(path, { method: "POST", json: body }));
    } catch (problem) {
      say(error, describeRefusal(problem), "error");
      return;
    }
    dialog.close("done");
    say(status, done, "success");
    await load();
  });
}

resyncForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  unflagFields(resyncForm);
  const [first, second] = [resyncForm.elements.otp1, resyncForm.elements.otp2];
  for (const input of [first, second]) {
    if (!/^[0-9]{6,8}$/.test(input.value.trim())) {
      say(resyncForm.querySelector("[role=alert]"), "Enter two codes of 6 or 8 digits.", "error");
      return flagField(input);
    }
  }
  const body = { otp1: first.value.trim(), otp2: second.value.trim() };
  await submitDialog(resyncDialog, resyncForm, `/api/v1/admin/tokens/${selected.id}/resync`, body,
    `${tokenName(selected)} is back in step.`);
});

assignForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  unflagFields(assignForm);
  const username = assignForm.elements.username.value.trim();
  if (!username) {
    say(assignForm.querySelector("[role=alert]"), "Enter a username.", "error");
    return flagField(assignForm.elements.username);
  }
  await submitDialog(assignDialog, assignForm, `/api/v1/admin/tokens/${selected.id}/assign`, { username },
    `${tokenName(selected)} now belongs to ${username}.`);
});

function reload(from) {
  quiet(status);
  load(from).catch((problem) => say(status, describeProblem(problem), "error"));
}

wireFilters(filters, reload);
wireDialogs();
enableControls();

try {
  await load();
} catch (problem) {
  say(status, describeProblem(problem), "error");
}
