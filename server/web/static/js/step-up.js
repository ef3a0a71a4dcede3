// Step-up: some changes (adding or removing a sign-in method, new recovery codes) need a second factor
// answered in the last few minutes. When the API answers `step_up_required`, the #step-up-dialog asks for
// the second factor again (POST /api/v1/step-up, answered through /web/session/verify, whose new cookies
// replace this session), then the change is tried once more.
import { api, sessionCall } from "./api.js";
import { byId, flagField, quiet, say, unflagFields, whileBusy } from "./elements.js";
import { groupDigits } from "./format.js";
import { describeProblem, describeWebauthnError } from "./messages.js";
import { getCredential, webauthnAvailable } from "./webauthn.js";

const WRONG_ANSWER_CODES = new Set(["invalid_otp", "replayed_otp", "invalid_fob_response", "validation_error"]);
// After these the transaction is spent: a new one is started for the next try.
const RESTART_CODES = new Set(["transaction_expired", "too_many_attempts"]);

export class StepUpCancelled extends Error {
  constructor() {
    super("The second factor was not answered");
    this.name = "StepUpCancelled";
  }
}

const dialog = byId("step-up-dialog");
const error = byId("step-up-error");
const otpForm = byId("step-up-otp-form");
const otpInput = byId("step-up-otp");
const keyMethod = byId("step-up-key");
const keyButton = byId("step-up-key-button");
const fobForm = byId("step-up-fob-form");
const fobInput = byId("step-up-fob-response");

let transaction = null;
let settle = null; // {resolve, reject} of the step-up the dialog is showing

async function start() {
  transaction = await api("/api/v1/step-up", { method: "POST", json: {} });
  const methods = new Set(transaction.methods);
  otpForm.hidden = !methods.has("otp");
  keyMethod.hidden = !(methods.has("webauthn") && transaction.webauthn);
  fobForm.hidden = !(methods.has("fob") && transaction.fob);
  if (!fobForm.hidden) byId("step-up-fob-challenge").textContent = groupDigits(transaction.fob.challenge);
  byId("step-up-none").hidden = !(otpForm.hidden && keyMethod.hidden && fobForm.hidden);
  for (const input of [otpInput, fobInput]) input.value = "";
}

function focusFirst() {
  const first = [otpInput, keyButton, fobInput].find((control) => !control.closest("[hidden]"));
  (first || byId("step-up-title")).focus();
}

async function answer(fields, field) {
  quiet(error);
  try {
    await sessionCall("verify", { transaction_id: transaction.transaction_id, ...fields });
  } catch (problem) {
    say(error, describeProblem(problem), "error");
    if (RESTART_CODES.has(problem.code)) {
      await start().catch(() => {});
      focusFirst();
    } else if (field) {
      field.value = "";
      if (WRONG_ANSWER_CODES.has(problem.code)) flagField(field);
      else field.focus();
    }
    return;
  }
  const done = settle;
  settle = null;
  dialog.close("done");
  done.resolve();
}

// Opens the dialog; resolves once the second factor was answered, rejects with StepUpCancelled.
async function askForSecondFactor(purpose) {
  byId("step-up-text").textContent = `To ${purpose}, answer your second factor again.`;
  quiet(error);
  unflagFields(dialog);
  await start();
  return new Promise((resolve, reject) => {
    settle = { resolve, reject };
    dialog.showModal();
    focusFirst();
  });
}

// Runs `work`; when it needs a recent second factor, asks for it and runs it once more. `purpose` completes
// "To …, answer your second factor again." A StepUpCancelled rejection means the person closed the dialog.
export async function withStepUp(purpose, work) {
  try {
    return await work();
  } catch (problem) {
    if (problem?.code !== "step_up_required") throw problem;
  }
  await askForSecondFactor(purpose);
  return work();
}

// What to tell a person whose change was refused, a closed step-up dialog included.
export function describeRefusal(problem) {
  return problem instanceof StepUpCancelled
    ? "Nothing was changed: your second factor was not answered."
    : describeProblem(problem);
}

dialog.addEventListener("close", () => {
  if (settle) {
    settle.reject(new StepUpCancelled());
    settle = null;
  }
});

byId("step-up-cancel").addEventListener("click", () => dialog.close("cancel"));

otpForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  unflagFields(otpForm);
  const code = otpInput.value.replace(/\s/g, "");
  if (!/^[0-9]{6,8}$/.test(code)) {
    say(error, "Enter the 6 or 8 digits your app shows.", "error");
    return flagField(otpInput);
  }
  await whileBusy(otpForm, () => answer({ otp: code }, otpInput));
});

fobForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  unflagFields(fobForm);
  const response = fobInput.value.replace(/\s/g, "");
  if (!response) {
    say(error, "Enter the response your fob shows.", "error");
    return flagField(fobInput);
  }
  await whileBusy(fobForm, () => answer({ fob_response: response }, fobInput));
});

keyButton.addEventListener("click", () =>
  whileBusy(keyButton, async () => {
    quiet(error);
    if (!webauthnAvailable()) {
      say(error, "This browser cannot use security keys here.", "error");
      return;
    }
    let credential;
    try {
      credential = await getCredential(transaction.webauthn.publicKey);
    } catch (problem) {
      say(error, describeWebauthnError(problem, "get"), "error");
      return;
    }
    await answer({ credential });
  }),
);
