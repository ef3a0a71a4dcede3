// The header of signed-in pages: sign out.
import { signOut } from "./api.js";

const button = document.getElementById("sign-out");
button?.addEventListener("click", async () => {
  button.disabled = true;
  button.textContent = "Signing out…";
  await signOut();
});
