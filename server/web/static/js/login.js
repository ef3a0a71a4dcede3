// Sign-in: password, then the second factor the account has (code, security key, fob) — or a passkey. A
// recovery code or an administrator's temporary code stands in for a lost factor: it signs in to add a
// new one (the account page in enroll mode).
import { api, refreshSession, sessionCall } from "./api.js";
import { byId, enableControls, flagField, quiet, say, unflagFields, whileBusy } from "./elements.js";
import { countdown, formatCountdown, groupDigits } from "./format.js";
import { describeProblem, describeWebauthnError } from "./messages.js";
import { getCredential, webauthnAvailable } from "./webauthn.js";

const main = byId("main");
const error = byId("login-error");
const passwordStep = byId("password-step");
const passwordForm = byId("password-form");
const username = byId("username");
const password = byId("password");
const passkeyButton = byId("passkey-button");
const factorStep = byId("second-factor");
const otpForm = byId("otp-form");
const otpInput = byId("otp");
const webauthnMethod = byId("webauthn-method");
const webauthnButton = byId("webauthn-button");
const fobForm = byId("fob-form");
const fobInput = byId("fob-response");
const expiry = byId("factor-expiry");
const factorMethods = [otpForm, webauthnMethod, fobForm];
// The forms for the codes that stand in for a lost factor, by the name `methods` lists them under.
const codeForms = { recovery: byId("recovery-form"), temporary_code: byId("temporary-form") };
const codeInputs = { recovery: byId("recovery-code"), temporary_code: byId("temporary-code") };
const codeChoices = byId("code-choices");
const useCode = { recovery: byId("use-recovery"), temporary_code: byId("use-temporary") };
const useFactor = byId("use-factor");

// The codes after which this transaction is over: the person starts again from the password.
const RESTART_CODES = new Set(["transaction_expired", "too_many_attempts"]);
// The codes that say the typed answer itself was wrong (the field is marked); a locked token or a rate
// limit is not the answer's fault.
const WRONG_ANSWER_CODES = new Set([
  "invalid_otp",
  "replayed_otp",
  "invalid_fob_response",
  "invalid_recovery_code",
  "invalid_temporary_code",
  "validation_error",
]);

let transaction = null;
let offeredFactors = []; // the factor methods (code, key, fob) this transaction can be answered with
let offeredCodes = []; // "recovery", "temporary_code"
let stopCountdown = () => {};

function fail(text, field) {
  say(error, text, "error");
  if (field) flagField(field);
}

function goOn(answer) {
  const enrollOnly = answer.status === "enroll" || answer.scope === "enroll";
  const next = enrollOnly ? "/account" : main.dataset.next || "/account";
  window.location.assign(next);
}

function showPasswordStep(message) {
  stopCountdown();
  transaction = null;
  factorStep.hidden = true;
  passwordStep.hidden = false;
  password.value = "";
  if (message) fail(message, username.value ? password : username);
  else if (!("stepUp" in main.dataset)) (username.value ? password : username).focus();
}

function showSecondFactor(answer, name) {
  transaction = answer;
  quiet(error);
  unflagFields(main);
  byId("factor-username").textContent = name || "your passkey";
  const methods = new Set(answer.methods);
  offeredFactors = [];
  if (methods.has("otp")) offeredFactors.push(otpForm);
  if (methods.has("webauthn") && answer.webauthn) offeredFactors.push(webauthnMethod);
  if (methods.has("fob") && answer.fob) {
    offeredFactors.push(fobForm);
    byId("fob-challenge").textContent = groupDigits(answer.fob.challenge);
  }
  offeredCodes = Object.keys(codeForms).filter((method) => methods.has(method));
  for (const input of [otpInput, fobInput, ...Object.values(codeInputs)]) input.value = "";
  // Without a factor that can answer, the first code form is the way in.
  showMethods(offeredFactors.length ? null : offeredCodes[0]);
  passwordStep.hidden = true;
  factorStep.hidden = false;
  stopCountdown = countdown(
    answer.expires_in,
    (left) => {
      expiry.textContent = `This sign-in expires in ${formatCountdown(left)}.`;
    },
    () => showPasswordStep(describeProblem({ name: "ApiError", code: "transaction_expired" })),
  );
  focusFirstMethod();
}

function focusFirstMethod() {
  const controls = [otpInput, webauthnButton, fobInput, ...Object.values(codeInputs)];
  const first = controls.find((control) => !control.closest("[hidden]"));
  (first || byId("factor-title")).focus();
}

// `code`: null for the account's factors, or the code method ("recovery", "temporary_code") to answer with.
function showMethods(code) {
  for (const method of factorMethods) method.hidden = code !== null || !offeredFactors.includes(method);
  for (const [method, form] of Object.entries(codeForms)) form.hidden = method !== code;
  for (const [method, button] of Object.entries(useCode)) {
    button.hidden = method === code || !offeredCodes.includes(method);
  }
  useFactor.hidden = code === null || offeredFactors.length === 0;
  codeChoices.hidden = [...Object.values(useCode), useFactor].every((button) => button.hidden);
  byId("code-choices-title").hidden = code !== null;
}

function switchMethods(code) {
  quiet(error);
  unflagFields(main);
  showMethods(code);
  focusFirstMethod();
}

async function answer(fields, field) {
  try {
    goOn(await sessionCall("verify", { transaction_id: transaction.transaction_id, ...fields }));
  } catch (problem) {
    if (RESTART_CODES.has(problem.code)) {
      showPasswordStep(describeProblem(problem));
      return;
    }
    fail(describeProblem(problem), WRONG_ANSWER_CODES.has(problem.code) ? field : null);
    if (field) {
      field.value = "";
      field.focus();
    }
  }
}

async function answerWithKey() {
  if (!webauthnAvailable()) {
    fail("This browser cannot use security keys here. Use another sign-in method or browser.");
    return;
  }
  quiet(error);
  let credential;
  try {
    credential = await getCredential(transaction.webauthn.publicKey);
  } catch (problem) {
    fail(describeWebauthnError(problem, "get"));
    return;
  }
  await answer({ credential });
}

passwordForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  quiet(error);
  unflagFields(passwordForm);
  if (!username.value.trim()) return fail("Enter your username.", username);
  if (!password.value) return fail("Enter your password.", password);
  await whileBusy(passwordForm, async () => {
    try {
      const result = await sessionCall("login", { username: username.value.trim(), password: password.value });
      if (result.status === "second_factor") showSecondFactor(result, username.value.trim());
      else goOn(result);
    } catch (problem) {
      password.value = "";
      fail(describeProblem(problem), problem.code === "invalid_credentials" ? password : null);
    }
  });
});

otpForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  unflagFields(otpForm);
  const code = otpInput.value.replace(/\s/g, "");
  if (!/^[0-9]{6,8}$/.test(code)) return fail("Enter the 6 or 8 digits your app shows.", otpInput);
  await whileBusy(otpForm, () => answer({ otp: code }, otpInput));
});

fobForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  unflagFields(fobForm);
  const response = fobInput.value.replace(/\s/g, "");
  if (!response) return fail("Enter the response your fob shows.", fobInput);
  await whileBusy(fobForm, () => answer({ fob_response: response }, fobInput));
});

for (const [method, form] of Object.entries(codeForms)) {
  const input = codeInputs[method];
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    unflagFields(form);
    const code = input.value.trim();
    if (!code) return fail("Enter the code.", input);
    const field = method === "recovery" ? "recovery_code" : "temporary_code";
    await whileBusy(form, () => answer({ [field]: code }, input));
  });
  useCode[method].addEventListener("click", () => switchMethods(method));
}
useFactor.addEventListener("click", () => switchMethods(null));

async function signInWithPasskey() {
  quiet(error);
  if (!webauthnAvailable()) return fail("This browser cannot use passkeys here.");
  let started;
  try {
    started = await sessionCall("passkey");
  } catch (problem) {
    return fail(describeProblem(problem));
  }
  transaction = started;
  let credential;
  try {
    credential = await getCredential(started.webauthn.publicKey);
  } catch (problem) {
    return fail(describeWebauthnError(problem, "passkey"));
  }
  await answer({ credential });
}

// A button that was disabled while its request ran takes the focus back afterwards (unless the page moved
// it elsewhere, e.g. to the password field when the sign-in starts over).
async function fromButton(button, work) {
  await whileBusy(button, work);
  if (!button.closest("[hidden]") && (document.activeElement === document.body || document.activeElement === button)) {
    button.focus();
  }
}

webauthnButton.addEventListener("click", () => fromButton(webauthnButton, answerWithKey));
passkeyButton.addEventListener("click", () => fromButton(passkeyButton, signInWithPasskey));

byId("restart").addEventListener("click", () => {
  quiet(error);
  showPasswordStep();
});

enableControls();

// An application (OpenID Connect) needs a stronger or more recent sign-in than this session: the second
// factor again (a step-up, whose session replaces this one), then back to the application's request.
if ("stepUp" in main.dataset) {
  try {
    showSecondFactor(await api("/api/v1/step-up", { method: "POST", json: {} }), main.dataset.stepUp);
  } catch {
    showPasswordStep();
  }
}

// Coming back from a page whose session expired: a still-valid refresh cookie signs in silently.
if ("tryRefresh" in main.dataset) {
  if (await refreshSession()) window.location.replace(main.dataset.next || "/account");
}
if (!("stepUp" in main.dataset)) (username.value ? password : username).focus();
