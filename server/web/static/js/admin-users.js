// Administration: users — create, disable and enable, delete, reset a local user's password, a temporary
// code for one who lost their sign-in methods, and a way to their tokens.
import "./topbar.js";
import { api } from "./api.js";
import {
  badge,
  byId,
  cell,
  enableControls,
  flagField,
  h,
  quiet,
  say,
  unflagFields,
  whileBusy,
  wireDialogs,
} from "./elements.js";
import { formatTime } from "./format.js";
import { PAGE_SIZE, emptyRow, renderPager } from "./listing.js";
import { confirmAction } from "./confirm.js";
import { describeProblem } from "./messages.js";
// What gives someone a way in (a user created or enabled, a password reset, a temporary code) or destroys
// (a user deleted) needs the administrator's second factor answered recently: step-up.js asks for it.
import { describeRefusal, withStepUp } from "./step-up.js";

const status = byId("admin-status");
const form = byId("user-form");
const tbody = byId("user-table").tBodies[0];
const pager = byId("users-pager");
const tempDialog = byId("temp-code-dialog");
const tempForm = byId("temp-code-form");
const tempShown = byId("temp-code-shown");
const passwordDialog = byId("reset-password-dialog");
const passwordForm = byId("reset-password-form");
let passwordFor = null; // the user the reset dialog is for
let tempFor = null; // the user the dialog is making a temporary code for
let offset = 0;

const me = byId("main").dataset.username;

function userRow(user) {
  const enable = user.disabled;
  const yourself = user.username === me;
  // No "Disable" on your own account: it would end this session and could leave no administrator.
  const toggle = yourself && !enable ? null : h("button", {
    type: "button",
    class: `button button-small ${enable ? "button-secondary" : "button-quiet"}`,
    "aria-label": `${enable ? "Enable" : "Disable"} ${user.username}`,
    text: enable ? "Enable" : "Disable",
    onclick: (event) => setDisabled(event.currentTarget, user, !enable),
  });
  const tokensLink = h("a", {
    class: "button button-quiet button-small",
    href: `/admin/tokens?username=${encodeURIComponent(user.username)}`,
    "aria-label": `Tokens of ${user.username}`,
    text: "Tokens",
  });
  // A temporary code is for someone who lost their sign-in methods; not for a disabled account, nor yourself.
  const tempCode = user.disabled || yourself
    ? null
    : h("button", {
        type: "button",
        class: "button button-quiet button-small",
        "aria-label": `Temporary code for ${user.username}`,
        text: "Temporary code",
        onclick: () => openTempCode(user),
      });
  // Your own account: the account page changes your password; deleting yourself is not offered.
  const resetPassword = yourself || user.source !== "local"
    ? null
    : h("button", {
        type: "button",
        class: "button button-quiet button-small",
        "aria-label": `Reset the password of ${user.username}`,
        text: "Reset password",
        onclick: () => openResetPassword(user),
      });
  const remove = yourself
    ? null
    : h("button", {
        type: "button",
        class: "button button-quiet button-small",
        "aria-label": `Delete ${user.username}`,
        text: "Delete",
        onclick: (event) => deleteUser(event.currentTarget, user),
      });
  return h(
    "tr",
    { dataset: { username: user.username } },
    cell(
      "Username",
      h("span", {}, h("span", { class: "strong", text: user.username }), yourself ? h("span", { class: "muted", text: " (you)" }) : null),
    ),
    cell("Role", user.role === "admin" ? "Administrator" : "User"),
    cell("Status", user.disabled ? badge("Disabled", "neutral") : badge("Active", "success")),
    cell("Created", formatTime(user.created_at)),
    cell("", h("div", { class: "row-actions" }, tokensLink, tempCode, resetPassword, toggle, remove)),
  );
}

async function load(newOffset = offset) {
  offset = newOffset;
  const page = await api(`/api/v1/admin/users?limit=${PAGE_SIZE}&offset=${offset}`);
  tbody.replaceChildren(...(page.users.length ? page.users.map(userRow) : [emptyRow(5, "No users yet.")]));
  byId("users-count").textContent = `${page.total} in all`;
  renderPager(pager, { offset, shown: page.users.length, total: page.total, noun: "users", go: load });
}

async function setDisabled(button, user, disabled) {
  quiet(status);
  await whileBusy(button, async () => {
    try {
      await withStepUp(disabled ? "disable a user" : "enable a user", () =>
        api(`/api/v1/admin/users/${encodeURIComponent(user.username)}/${disabled ? "disable" : "enable"}`, {
          method: "POST",
          json: {},
        }),
      );
      say(status, `${user.username} is ${disabled ? "disabled; their sessions were ended" : "enabled"}.`, "success");
    } catch (problem) {
      say(status, describeRefusal(problem), "error");
    }
  });
  await load();
}

async function deleteUser(button, user) {
  const confirmed = await confirmAction({
    title: `Delete ${user.username}?`,
    text: `${user.username}, their sign-in methods and sessions are deleted for good.`,
    confirmLabel: "Delete",
  });
  if (!confirmed) return;
  quiet(status);
  await whileBusy(button, async () => {
    try {
      await withStepUp("delete a user", () =>
        api(`/api/v1/admin/users/${encodeURIComponent(user.username)}`, { method: "DELETE" }),
      );
      say(status, `${user.username} was deleted.`, "success");
    } catch (problem) {
      say(status, describeRefusal(problem), "error");
    }
  });
  await load();
}

function openResetPassword(user) {
  passwordFor = user;
  quiet(status);
  passwordForm.reset();
  unflagFields(passwordForm);
  byId("reset-password-title").textContent = `New password for ${user.username}`;
  passwordDialog.showModal();
  passwordForm.elements.password.focus();
}

passwordForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = passwordFor.username;
  const password = passwordForm.elements.password.value;
  if (password.length < 8) {
    say(byId("reset-password-error"), "The password needs at least 8 characters.", "error");
    return flagField(passwordForm.elements.password);
  }
  await whileBusy(passwordForm, async () => {
    try {
      await withStepUp("reset a password", () =>
        api(`/api/v1/admin/users/${encodeURIComponent(username)}/password`, { method: "POST", json: { password } }),
      );
    } catch (problem) {
      passwordDialog.close("cancel");
      say(status, describeRefusal(problem), "error");
      return;
    }
    passwordDialog.close("done");
    say(status, `The password of ${username} was reset; their sessions were ended.`, "success");
  });
});

passwordDialog.addEventListener("close", () => {
  passwordForm.reset(); // the password leaves the page with the dialog
  passwordFor = null;
});

function openTempCode(user) {
  tempFor = user;
  quiet(status);
  byId("temp-code-title").textContent = `Temporary code for ${user.username}`;
  tempForm.reset();
  tempForm.hidden = false;
  tempShown.hidden = true;
  byId("temp-code-value").textContent = "";
  tempDialog.showModal();
  tempForm.elements.ttl.focus();
}

tempForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = tempFor.username;
  await whileBusy(tempForm, async () => {
    let issued;
    try {
      issued = await withStepUp("issue a temporary code", () =>
        api(`/api/v1/admin/users/${encodeURIComponent(username)}/temporary-code`, {
          method: "POST",
          json: { ttl: Number(tempForm.elements.ttl.value) },
        }),
      );
    } catch (problem) {
      tempDialog.close("cancel");
      say(status, describeRefusal(problem), "error");
      return;
    }
    byId("temp-code-shown-title").textContent = `Temporary code for ${username}`;
    byId("temp-code-shown-text").textContent =
      `Give this code to ${username} in person or by phone. It is shown only this once. ` +
      `${username} enters it at sign-in after their password, then adds a new sign-in method.`;
    byId("temp-code-value").textContent = issued.code;
    byId("temp-code-expiry").textContent = `It works once, until ${formatTime(issued.expires_at)}.`;
    tempForm.hidden = true;
    tempShown.hidden = false;
    byId("temp-code-shown-title").focus();
    say(status, `A temporary code for ${username} was created.`, "success");
  });
});

tempDialog.addEventListener("close", () => {
  // The code is shown once: it leaves the page with the dialog.
  byId("temp-code-value").textContent = "";
  tempFor = null;
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  quiet(status);
  unflagFields(form);
  const username = form.elements.username.value.trim();
  if (!username) {
    say(status, "Enter a username.", "error");
    return flagField(form.elements.username);
  }
  const body = { username, role: form.elements.role.value };
  if (form.elements.password.value) body.password = form.elements.password.value;
  await whileBusy(form, async () => {
    try {
      await withStepUp("create a user", () => api("/api/v1/admin/users", { method: "POST", json: body }));
    } catch (problem) {
      if (problem.code === "conflict") {
        say(status, `There is already a user named ${username}. Choose another name.`, "error");
        flagField(form.elements.username);
      } else say(status, describeRefusal(problem), "error");
      return;
    }
    form.reset();
    say(status, `${username} was created.`, "success");
    await load();
  });
  form.elements.username.focus();
});

wireDialogs();
enableControls();
try {
  await load(0);
} catch (problem) {
  say(status, describeProblem(problem), "error");
}
