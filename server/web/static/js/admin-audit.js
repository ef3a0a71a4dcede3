// Administration: the audit log, newest first, filtered by actor, action, result and target.
import "./topbar.js";
import { api } from "./api.js";
import { badge, byId, cell, enableControls, h, noValue, quiet, say } from "./elements.js";
import { formatTime } from "./format.js";
import { apiQuery, emptyRow, filterParams, readQuery, remember, renderPager, wireFilters } from "./listing.js";
import { describeProblem } from "./messages.js";

const status = byId("admin-status");
const filters = byId("audit-filters");
const tbody = byId("audit-table").tBodies[0];
const pager = byId("audit-pager");
let offset = readQuery(filters);

// "token:3c5b60d973e5400592278c0fce81c36a" reads as "token:3c5b60d9…"; the whole value is in the tooltip.
const LONG_ID = /\b([0-9a-f]{8})[0-9a-f]{16,}\b/g;

// A value in the log that narrows the log to it when clicked (the same as typing it into the filter).
function filterBy(field, value) {
  if (!value) return noValue();
  const shown = value.replace(LONG_ID, "$1…");
  return h("button", {
    type: "button",
    class: "button-link filter-link",
    title: shown === value ? null : value,
    "aria-label": `Show only events with ${field} ${value}`,
    text: shown,
    onclick: () => {
      filters.elements[field].value = value;
      reload(0);
    },
  });
}

function eventRow(event) {
  return h(
    "tr",
    { dataset: { eventId: event.id } },
    cell("Time", h("span", { class: "nowrap", text: formatTime(event.at, { seconds: true }) })),
    cell("Actor", filterBy("actor", event.actor)),
    cell("Action", h("code", { text: event.action })),
    cell("Target", filterBy("target", event.target)),
    cell("Result", event.result === "success" ? badge("Success", "success") : badge("Failure", "danger")),
    cell("Reason", event.reason ? h("code", { text: event.reason }) : noValue()),
    cell("Client", event.client_ip || "—"),
  );
}

async function load(newOffset = offset) {
  offset = newOffset;
  const params = filterParams(filters);
  remember(params, offset);
  const page = await api(`/api/v1/admin/audit?${apiQuery(params, offset)}`);
  tbody.replaceChildren(...(page.events.length ? page.events.map(eventRow) : [emptyRow(7, "No events match.")]));
  byId("audit-count").textContent = page.total === 1 ? "1 event" : `${page.total} events`;
  renderPager(pager, { offset, shown: page.events.length, total: page.total, noun: "events", go: load });
}

function reload(from) {
  quiet(status);
  load(from).catch((problem) => say(status, describeProblem(problem), "error"));
}

wireFilters(filters, reload);

enableControls();
reload(offset);
