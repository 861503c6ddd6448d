// ivr console: what every page's module shares.  Each page (desk.js, board.js,
// office.js, tickets.js) builds itself from ivr's JSON API and its live events.
// Every control has an accessible name; the pages work by keyboard.

// What the server put in the page (templates/page.html): the page, the session's
// CSRF token, the language, its words and the labels of the API's codes.
export const settings = JSON.parse(document.getElementById("settings").textContent);
export const words = settings.t;
// Where a page builds itself.
export const root = document.getElementById("app");

// A code of ivr's API (an outcome, a state...) in the page's language.
export function label(space, code) { return (settings.labels[space] || {})[code] || code; }

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

export async function api(method, path, body) {
  const resp = await fetch(path, {method, credentials: "same-origin",
    headers: {"X-CSRF-Token": settings.csrf, "Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await resp.json().catch(() => ({}));
  return {status: resp.status, data};
}

export function say(where, text) { where.textContent = text; }

// An API error in the page's language: an English page shows ivr's own line; another
// the label of its code, or of its status followed by ivr's line.
export function apiError(r) {
  const own = r.data.error || String(r.status);
  if (settings.lang === "en") return own;
  if (r.data.code && settings.labels.error[r.data.code]) return settings.labels.error[r.data.code];
  return `${label("status", String(r.status))} (${own})`;
}

export function header(...names) { return el("tr", {}, ...names.map((n) => el("th", {scope: "col"}, n))); }

export function live(query, handlers) {
  // EventSource reconnects by itself after a drop; a session ivr no longer knows
  // (signed out elsewhere, expired, or its token taken away) goes back to sign-in.
  const source = new EventSource("/console/events" + query);
  source.onerror = async () => {
    const r = await fetch("/api/v1/incidents", {headers: {"X-CSRF-Token": settings.csrf}}).catch(() => null);
    if (r && r.status === 401) location.href = "/console";
  };
  for (const [name, fn] of Object.entries(handlers))
    source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  return source;
}
