// The header of signed-in pages: sign out.
import { signOut } from "./api.js";

const button = document.getElementById("sign-out");
if (button) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.textContent = "Signing out…";
    await signOut();
  });
  button.removeAttribute("data-needs-script");
  button.disabled = false;
}
