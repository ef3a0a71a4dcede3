// Administration: the registered clients (login forms and OpenID Connect relying parties), never a secret.
import "./topbar.js";
import { api } from "./api.js";
import { badge, byId, cell, h, noValue, say } from "./elements.js";
import { emptyRow } from "./listing.js";
import { describeProblem } from "./messages.js";

const status = byId("admin-status");
const tbody = byId("clients-table").tBodies[0];

function kind(client) {
  const parts = [client.public ? "Public" : "Confidential"];
  if (client.first_party) parts.push("first-party");
  return parts.join(", ");
}

function clientRow(client) {
  const uris = client.redirect_uris.length
    ? h("ul", { class: "uri-list" }, ...client.redirect_uris.map((uri) => h("li", {}, h("code", { text: uri }))))
    : noValue();
  return h(
    "tr",
    { dataset: { clientId: client.client_id } },
    cell("Name", h("strong", { text: client.name })),
    cell("Client ID", h("code", { text: client.client_id })),
    cell("Kind", h("span", { text: kind(client) })),
    cell("Redirect URIs", uris),
    cell("Requires", client.require ? badge(client.require, "warning") : noValue()),
    cell("Sign-in methods", h("span", { text: client.allow.join(", ") })),
  );
}

try {
  const { clients } = await api("/api/v1/admin/clients");
  tbody.replaceChildren(...(clients.length ? clients.map(clientRow) : [emptyRow(6, "No clients yet.")]));
  byId("clients-count").textContent = clients.length === 1 ? "1 client" : `${clients.length} clients`;
} catch (problem) {
  say(status, describeProblem(problem), "error");
}
