// The account page's password change (local users): the current password and a recent second factor
// (step-up.js asks for it when the API says step_up_required). The user's other sessions end.
import { api } from "./api.js";
import { byId, flagField, quiet, say, unflagFields, whileBusy } from "./elements.js";
import { describeProblem } from "./messages.js";
import { StepUpCancelled, withStepUp } from "./step-up.js";

const MIN_LENGTH = 8;

export function wirePasswordForm(status) {
  const form = document.getElementById("password-form");
  if (!form) return; // an enroll-only session, or a directory user
  const current = byId("current-password");
  const fresh = byId("new-password");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    quiet(status);
    unflagFields(form);
    if (fresh.value.length < MIN_LENGTH) {
      say(status, `The new password needs at least ${MIN_LENGTH} characters.`, "error");
      return flagField(fresh);
    }
    const body = { current_password: current.value, new_password: fresh.value };
    await whileBusy(form, async () => {
      try {
        await withStepUp("change your password", () => api("/api/v1/me/password", { method: "POST", json: body }));
      } catch (problem) {
        if (problem instanceof StepUpCancelled) say(status, "Your password was not changed.", "info");
        else if (problem.code === "invalid_credentials") {
          say(status, "The current password is not right.", "error");
          flagField(current);
        } else say(status, describeProblem(problem), "error");
        return;
      }
      form.reset();
      say(status, "Your password was changed. Your other sessions were signed out.", "success");
    });
  });
}
