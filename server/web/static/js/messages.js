// What to tell a person when something fails: the API's stable problem codes, and the browser's
// WebAuthn errors, in plain words.

const PROBLEMS = {
  invalid_credentials: "The username or password is not right.",
  invalid_otp: "That code is not right. Check the code in your app and try again.",
  replayed_otp: "That code was already used. Wait for the app to show a new code, then enter it.",
  token_locked:
    "This sign-in method is locked after too many wrong attempts. Ask an administrator to unlock it.",
  transaction_expired: "This sign-in took too long. Enter your password again to start over.",
  too_many_attempts: "Too many wrong answers for this sign-in. Enter your password again to start over.",
  no_usable_token: "There is no active sign-in method that can answer this. Ask an administrator.",
  invalid_credential:
    "This security key was not accepted. Use a key that is registered to your account.",
  credential_not_discoverable:
    "This security key was registered without passkey sign-in. Sign in with your username, then add it again as a passkey.",
  credential_counter_regressed:
    "This security key looks copied and was disabled to protect your account. Contact an administrator.",
  invalid_fob_response: "That response is not right. Check the challenge on the fob and try again.",
  authenticator_not_allowed: "This model of security key is not allowed here.",
  attestation_untrusted: "This security key could not prove it is a trusted model.",
  invalid_recovery_code: "That recovery code is not right, or it was already used. Check it and try again.",
  invalid_temporary_code:
    "That temporary code is not right, was already used or has expired. Ask your administrator for a new one.",
  enrollment_needs_code:
    "Your account has no working sign-in method left. Ask your administrator for a temporary code, " +
    "then sign in again and enter it.",
  step_up_required: "Confirm it's you: answer your sign-in method again.",
  mfa_required: "This needs a sign-in with two factors. Sign out and sign in again with your sign-in method.",
  enrollment_expired: "This setup took too long and expired. Start again.",
  csrf_failed: "This page is out of date. Reload it and try again.",
  password_in_directory: "Your password is kept in your organization's directory: change it there.",
  unauthenticated: "Your session ended. Sign in again.",
  invalid_token: "Your session ended. Sign in again.",
  forbidden: "You are not allowed to do that.",
  not_found: "It is not there any more. Reload the page.",
  internal_error: "Something went wrong on the server. Try again in a moment.",
};

export function describeProblem(error) {
  if (error?.name !== "ApiError") {
    return "The server could not be reached. Check your connection and try again.";
  }
  if (error.code === "rate_limited") {
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} seconds.` : " Wait a minute and try again.";
    return `Too many attempts.${wait}`;
  }
  if (error.code === "validation_error" || error.code === "conflict" || error.code === "resync_failed") {
    return error.problem.detail || error.message;
  }
  return PROBLEMS[error.code] || error.problem.detail || error.message;
}

const NOT_ALLOWED = {
  create: "The security key did not answer, or the request was cancelled. Try again.",
  get:
    "No security key answered, or the request was cancelled. If this key is not registered to your account, " +
    "use another sign-in method.",
  passkey:
    "No passkey for this site answered, or the request was cancelled. " +
    "Sign in with your username and password instead.",
};

// Ceremonies: "create" (adding a key), "get" (a key as second factor) or "passkey" (usernameless sign-in).
export function describeWebauthnError(error, ceremony) {
  switch (error?.name) {
    case "NotAllowedError":
      return NOT_ALLOWED[ceremony];
    case "InvalidStateError":
      return "This security key is already registered to your account.";
    case "SecurityError":
      return "Security keys cannot be used from this address. Open Tokenward at its official address.";
    case "NotSupportedError":
      return "This browser or key does not support what is needed. Try another key or browser.";
    case "AbortError":
      return "The security key request was cancelled.";
    default:
      return "The security key could not be used. Try again.";
  }
}
