// Calls to the JSON API and to /web/session/* with the session cookies. The pages never hold a token:
// the browser sends the HttpOnly access cookie, and state changes echo the CSRF cookie in a header.

const body = document.body.dataset;
// The page names the CSRF cookie: `__Host-tw_csrf` when the server's public URL is https, `tw_csrf` under http.
const CSRF_COOKIE = body.csrfCookie || "tw_csrf";
const CSRF_HEADER = body.csrfHeader || "X-CSRF-Token";
const SESSION_PREFIX = "/web/session/";

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || problem.title || `Request failed (${status})`);
    this.name = "ApiError";
    this.status = status;
    this.code = problem.code || "error";
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

function csrfValue() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

function send(path, { method = "GET", json } = {}) {
  const headers = { Accept: "application/json" };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers[CSRF_HEADER] = csrfValue();
  return fetch(path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    credentials: "same-origin",
    cache: "no-store",
  });
}

async function decode(response) {
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const problem = data && typeof data === "object" ? data : { title: response.statusText };
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(response.status, problem, retryAfter);
  }
  return data;
}

// One refresh at a time: a refresh token works once, and a second use would revoke the whole session.
let refreshing = null;

export function refreshSession() {
  refreshing ??= send(`${SESSION_PREFIX}refresh`, { method: "POST", json: {} })
    .then((response) => response.ok)
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export function goToLogin() {
  const next = encodeURIComponent(window.location.pathname);
  window.location.assign(`/login?next=${next}&reason=expired`);
}

// The 401 codes that mean the session itself is missing, expired or revoked. Every other 401 (a wrong code
// while adding an authenticator app, a refused security key) is an answer for the page to show.
const SESSION_ENDED = new Set(["unauthenticated", "invalid_token"]);

async function sessionEnded(response) {
  if (response.status !== 401) return false;
  try {
    const problem = await response.clone().json();
    return SESSION_ENDED.has(problem?.code);
  } catch {
    return true; // a 401 without a problem body: nothing says the session is still alive
  }
}

// Set once the page signs out: a call still in flight then finds the session gone, and must neither refresh
// nor send the page to "your session ended" instead of the sign-in page the sign-out goes to.
let signingOut = false;

// The JSON API. A 401 for the session refreshes it once and retries; when that fails, to the sign-in page.
export async function api(path, options = {}) {
  let response = await send(path, options);
  if (await sessionEnded(response)) {
    if (!signingOut && (await refreshSession())) response = await send(path, options);
    if (await sessionEnded(response)) {
      if (!signingOut) goToLogin();
      return new Promise(() => {}); // the page is going away; nothing more to do here
    }
  }
  return decode(response);
}

// /web/session/* (sign-in steps): errors are for the page to show, never a redirect.
export async function sessionCall(step, json = {}) {
  return decode(await send(`${SESSION_PREFIX}${step}`, { method: "POST", json }));
}

// Sign out: the server revokes the session (access token and refresh family) and clears the cookies.
export async function signOut() {
  signingOut = true;
  let response = await send(`${SESSION_PREFIX}logout`, { method: "POST", json: {} });
  if (response.status === 401 && (await refreshSession())) {
    response = await send(`${SESSION_PREFIX}logout`, { method: "POST", json: {} });
  }
  window.location.assign("/login");
}
