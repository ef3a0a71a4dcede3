// Admin lists: filters kept in the address bar (so a reload or a shared link shows the same list) and
// "previous / next" paging over the API's limit/offset.
import { h } from "./elements.js";

export const PAGE_SIZE = 25;

// The filter form's values, then `offset`, from the address bar.
export function readQuery(form) {
  const params = new URLSearchParams(window.location.search);
  for (const element of form.elements) {
    if (!element.name || !params.has(element.name)) continue;
    if (element.type === "checkbox") element.checked = params.get(element.name) === element.value;
    else element.value = params.get(element.name);
  }
  return Math.max(0, Number(params.get("offset")) || 0);
}

// Non-empty filters as query parameters for the API and the address bar.
export function filterParams(form) {
  const params = new URLSearchParams();
  for (const element of form.elements) {
    if (!element.name) continue;
    if (element.type === "checkbox") {
      if (element.checked) params.set(element.name, element.value);
    } else if (element.value.trim()) params.set(element.name, element.value.trim());
  }
  return params;
}

export function remember(params, offset) {
  const shown = new URLSearchParams(params);
  if (offset) shown.set("offset", String(offset));
  const query = shown.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

export function apiQuery(params, offset) {
  const query = new URLSearchParams(params);
  query.set("limit", String(PAGE_SIZE));
  query.set("offset", String(offset));
  return query.toString();
}

// "21–40 of 132" and the two buttons; `go(offset)` loads another page.
export function renderPager(nav, { offset, shown, total, noun, go }) {
  const first = total === 0 ? 0 : offset + 1;
  const last = offset + shown;
  const previous = h("button", {
    type: "button",
    class: "button button-secondary button-small",
    text: "Previous",
    disabled: offset === 0,
    onclick: () => go(Math.max(0, offset - PAGE_SIZE)),
  });
  const next = h("button", {
    type: "button",
    class: "button button-secondary button-small",
    text: "Next",
    disabled: last >= total,
    onclick: () => go(offset + PAGE_SIZE),
  });
  const counted = total === 1 ? noun.replace(/s$/, "") : noun;
  let summary = `${first}–${last} of ${total} ${counted}`;
  if (total === 0) summary = `No ${noun}`;
  else if (first === last) summary = `${first} of ${total} ${counted}`;
  const onePage = offset === 0 && last >= total;
  const summaryLine = h("p", { class: "pager-summary", text: summary });
  if (onePage) nav.replaceChildren(summaryLine);
  else nav.replaceChildren(summaryLine, h("div", { class: "pager-buttons" }, previous, next));
}

export function emptyRow(columns, text) {
  return h("tr", { class: "empty-row" }, h("td", { colspan: columns, text }));
}

// Apply loads the first page of what the filters now say; so does Reset, on the next turn (the form's reset
// event fires before the fields are cleared).
export function wireFilters(form, reload) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    reload(0);
  });
  form.addEventListener("reset", () => window.setTimeout(() => reload(0)));
}
