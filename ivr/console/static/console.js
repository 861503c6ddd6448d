// ivr console: each page builds itself from ivr's JSON API and its live events.
// Every control has an accessible name; the pages work by keyboard.
"use strict";
const S = JSON.parse(document.getElementById("settings").textContent);
const T = S.t;
// A code of ivr's API (an outcome, a state...) in the page's language.
const L = (space, code) => (S.labels[space] || {})[code] || code;
const app = document.getElementById("app");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(method, path, body) {
  const resp = await fetch(path, {method, credentials: "same-origin",
    headers: {"X-CSRF-Token": S.csrf, "Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await resp.json().catch(() => ({}));
  return {status: resp.status, data};
}

function say(where, text) { where.textContent = text; }

// An API error in the page's language: an English page shows ivr's own line; another
// the label of its code, or of its status followed by ivr's line.
function apiError(r) {
  const own = r.data.error || String(r.status);
  if (S.lang === "en") return own;
  if (r.data.code && S.labels.error[r.data.code]) return S.labels.error[r.data.code];
  return `${L("status", String(r.status))} (${own})`;
}

function header(...names) { return el("tr", {}, ...names.map((n) => el("th", {scope: "col"}, n))); }

function live(query, handlers) {
  // EventSource reconnects by itself after a drop; a session ivr no longer knows
  // (signed out elsewhere, expired, or its token taken away) goes back to sign-in.
  const source = new EventSource("/console/events" + query);
  source.onerror = async () => {
    const r = await fetch("/api/v1/incidents", {headers: {"X-CSRF-Token": S.csrf}}).catch(() => null);
    if (r && r.status === 401) location.href = "/console";
  };
  for (const [name, fn] of Object.entries(handlers))
    source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  return source;
}

// -- the operator's desk ----------------------------------------------------
function desk() {
  const card = el("section", {"aria-label": T.caller, "aria-live": "polite", id: "card"}, T.waiting_call);
  const status = el("p", {role: "status"});
  let call = null, warned = false;
  const buttons = {};
  const problem = el("input", {id: "problem"});
  const act = (name, label, fn) => {
    buttons[name] = el("button", {type: "button", disabled: true, on: {click: fn}}, label);
    return buttons[name];
  };
  const post = async (path, body, done) => {
    const r = await api("POST", path, body);
    say(status, r.status < 300 ? done(r.data) : apiError(r));
    return r;
  };
  const why = el("p", {id: "escalate-why", class: "why"});   // why Escalate is off, when it is
  const toolbar = el("div", {role: "toolbar", "aria-label": T.desk},
    act("escalate", T.escalate, () => post(`/api/v1/calls/${call.uniqueid}/escalate`, undefined, () => T.escalate + " ✓")),
    act("ticket", T.file_ticket, () => post("/api/v1/tickets",
        {call: call.uniqueid, account: call.account || undefined,
         problem: problem.value || "—"}, (d) => `${T.number} ${d.number}`)),
    act("warn", T.warn, async () => { const r = await post(`/api/v1/calls/${call.uniqueid}/warn`, undefined, () => T.warn + " ✓");
                                      if (r.status < 300) { warned = true; buttons.end.disabled = false; } }),
    act("end", T.end_abuse, () => post(`/api/v1/calls/${call.uniqueid}/end`, {reason: "abuse"}, () => T.end_abuse + " ✓")),
    act("supervisor", T.to_supervisor, () => post(`/api/v1/calls/${call.uniqueid}/transfer`, {to: "supervisor"}, (d) => `${T.to_supervisor}: ${d.to}`)),
    act("readback", T.read_back, () => post(`/api/v1/calls/${call.uniqueid}/transfer`, {to: "read_back"}, (d) => `${T.read_back}: ${d.to}`)));
  const select = el("select", {id: "disposition", disabled: true},
    ...S.dispositions.map((c) => el("option", {value: c}, L("disposition", c))));
  const save = el("button", {type: "button", disabled: true, on: {click: () =>
    post(`/api/v1/calls/${call.uniqueid}/disposition`, {code: select.value}, () => T.disposition + " ✓")}}, T.save);
  buttons.escalate.setAttribute("aria-describedby", "escalate-why");
  app.append(card, el("p", {}, el("label", {for: "problem"}, T.problem + " "), problem), toolbar, why,
             el("p", {}, el("label", {for: "disposition"}, T.disposition + " "), select, " ", save), status);

  live(`?member=${encodeURIComponent(S.member)}`, {
    answered(c) {
      call = c; warned = false;
      card.replaceChildren(
        el("h2", {}, `${T.caller}: ${c.caller || "—"}`),
        el("p", {}, `${T.account}: ${c.account || "—"} · ${c.area || "—"} · ${(c.wait_ms / 1000).toFixed(1)} ${T.seconds_short}`),
        c.incident ? el("p", {class: "incident", role: "note"}, c.incident.message) : "",
        el("h3", {}, T.recent_calls),
        el("ul", {}, ...c.recent.map((r) => el("li", {class: r.repeat ? "repeat" : ""},
          `${new Date(r.at * 1000).toLocaleString(S.lang)} ${L("outcome", r.outcome)}${r.repeat ? ` (${T.repeat})` : ""}`))),
        el("h3", {}, T.open_items),
        el("ul", {}, ...c.open.map((i) => el("li", {}, `${L("kind", i.kind)} ${i.number}: ${L("state", i.state)}`))));
      for (const [name, b] of Object.entries(buttons)) b.disabled = name === "end";
      buttons.escalate.disabled = !c.can_escalate;
      say(why, c.can_escalate ? "" : `${T.escalate}: ${T.incident_blocks}`);
      select.disabled = save.disabled = false;
    },
    ended() { for (const b of Object.values(buttons)) b.disabled = true; },
  });
}

// -- the supervisor's board ---------------------------------------------------
function board() {
  const queues = el("section", {"aria-label": T.queues}, el("h2", {}, T.queues));
  const table = el("table", {});
  queues.append(table);
  const out = el("p", {role: "status"});
  const callInput = el("input", {id: "c-call", required: true});
  const textInput = el("input", {id: "c-text", required: true});
  const form = el("form", {"aria-label": T.complaint_for_call, on: {submit: async (e) => {
      e.preventDefault();
      const r = await api("POST", "/api/v1/complaints", {call: callInput.value, text: textInput.value});
      say(out, r.status < 300 ? `${T.number} ${r.data.number} (${r.data.operator})` : apiError(r));
    }}},
    el("h2", {}, T.complaint_for_call),
    el("label", {for: "c-call"}, T.call + " "), callInput, " ",
    el("label", {for: "c-text"}, T.text + " "), textInput, " ",
    el("button", {type: "submit"}, T.file_complaint), out);
  const complaints = el("section", {"aria-label": T.complaints}, el("h2", {}, T.complaints));
  const list = el("ul", {});
  complaints.append(list);
  const level = el("p", {role: "status", "aria-label": T.service_level});
  app.append(el("section", {"aria-label": T.service_level}, el("h2", {}, T.service_level), level),
             queues, el("section", {}, form), complaints);
  live("", {queues(d) {
    const sl = d.service_level;
    say(level, `${sl.queue}, ${sl.threshold_seconds} ${T.seconds_short}: ${T.now} ${sl.waiting_within}/${sl.waiting}` +
        ` · ${T.today} ${sl.today_share === null ? "—" : (sl.today_share * 100).toFixed(1) + " %"} (${sl.today_offered})`);
    table.replaceChildren(header(T.queue, T.waiting, T.agents),
      ...Object.entries(d.queues).map(([q, v]) => el("tr", {},
        el("td", {}, q),
        el("td", {}, ...v.waiting.map((w) => el("span", {class: w.wait_seconds > v.threshold_seconds ? "late" : ""},
          `${w.caller || w.uniqueid} ${w.wait_seconds.toFixed(0)} ${T.seconds_short} `,
          q === "common" ? "" : el("button", {type: "button", "aria-label": `${T.move} ${w.caller || w.uniqueid} → common`,
            on: {click: () => api("POST", `/api/v1/calls/${w.uniqueid}/move?pbx=${w.pbx}`, {queue: "common"})
              .then((r) => say(out, r.status < 300 ? `${T.move} ✓` : apiError(r)))}}, `${T.move} → common`), " "))),
        el("td", {}, v.agents.map((a) => `${a.name}: ${L("agent", a.state)}`).join(", ")))));
    list.replaceChildren(...d.complaints.map((c) => el("li", {}, `${c.number} ${c.operator} ${L("state", c.state)}`)));
  }});
}

// -- the provider's office ------------------------------------------------------
function office() {
  const found = el("pre", {role: "status", "aria-label": T.find_number});
  const number = el("input", {id: "o-number", inputmode: "numeric"});
  const lookup = el("form", {"aria-label": T.find_number, on: {submit: async (e) => {
      e.preventDefault();
      const n = number.value.trim();
      const kind = {"1": "tickets", "2": "complaints", "3": "claims"}[n[0]] || "tickets";
      const r = await api("GET", `/api/v1/${kind}/${encodeURIComponent(n)}`);
      say(found, r.status < 300 ? `${L("kind", r.data.kind)} ${r.data.number}: ${L("state", r.data.state)}` +
          (r.data.operator ? ` · ${r.data.operator}` : "") : apiError(r));
    }}}, el("h2", {}, T.find_number), el("label", {for: "o-number"}, T.number + " "), number, " ",
    el("button", {type: "submit"}, T.find), found);
  const chain = el("p", {role: "status", "aria-label": T.registry});
  const registry = el("section", {"aria-label": T.registry}, el("h2", {}, T.registry),
    el("button", {type: "button", on: {click: async () => {
      const r = await api("GET", "/api/v1/registry");
      say(chain, r.data.intact ? `✓ ${r.data.entries.length} · ${r.data.head.hash.slice(0, 16)}` : `✗ ${r.data.problem || apiError(r)}`);
    }}}, T.verify), chain);
  const today = new Date(), first = new Date(today.getFullYear(), today.getMonth(), 1);
  const iso = (d) => d.toISOString().slice(0, 10);
  const from = el("input", {id: "s-from", type: "date", value: iso(first)});
  const to = el("input", {id: "s-to", type: "date", value: iso(new Date(today.getTime() + 86400000))});
  const chart = el("div", {id: "chart"});
  const csv = el("a", {href: "#"}, T.download_csv);
  const statement = el("form", {"aria-label": T.statement, on: {submit: async (e) => {
      e.preventDefault();
      const q = `from=${from.value}&to=${to.value}`;
      csv.href = `/console/statement.csv?${q}`;
      const r = await api("GET", `/api/v1/reports/billing?${q}`);
      if (r.status >= 300) { say(chart, apiError(r)); return; }
      chart.replaceChildren(bars(r.data.days));
    }}}, el("h2", {}, T.statement), el("label", {for: "s-from"}, T.from + " "), from, " ",
    el("label", {for: "s-to"}, T.to + " "), to, " ", el("button", {type: "submit"}, T.show), " ", csv, chart);
  const incidentList = el("ul", {});
  const listIncidents = () => api("GET", "/api/v1/incidents").then((r) => incidentList.replaceChildren(
    ...(r.data.incidents || []).map((i) => el("li", {}, `${i.id} ${i.area}: ${i.message} `,
      el("button", {type: "button", "aria-label": `${T.close} ${i.id}`, on: {click: () =>
        api("DELETE", `/api/v1/incidents/${i.id}`).then(listIncidents)}}, T.close)))));
  const area = el("input", {id: "i-area", required: true}), message = el("input", {id: "i-message", required: true});
  const hours = el("input", {id: "i-hours", type: "number", min: "1", value: "4"});
  const opened = el("p", {role: "status", "aria-label": T.open_incident});
  const incidents = el("section", {"aria-label": T.incidents}, el("h2", {}, T.incidents), incidentList,
    el("form", {"aria-label": T.open_incident, on: {submit: async (e) => {
      e.preventDefault();
      const r = await api("POST", "/api/v1/incidents", {area: area.value, message: message.value,
                                                       expires_in: Number(hours.value) * 3600});
      say(opened, r.status < 300 ? r.data.id : apiError(r));
      listIncidents();
    }}}, el("label", {for: "i-area"}, T.area + " "), area, " ", el("label", {for: "i-message"}, T.message + " "),
      message, " ", el("label", {for: "i-hours"}, T.hours + " "), hours, " ",
      el("button", {type: "submit"}, T.open_incident), opened));
  listIncidents();
  const down = el("table", {"aria-label": T.downtime});
  const downtime = el("section", {"aria-label": T.downtime}, el("h2", {}, T.downtime),
    el("button", {type: "button", on: {click: async () => {
      const r = await api("GET", `/api/v1/reports/downtime?from=${from.value}&to=${to.value}`);
      down.replaceChildren(header(T.account, T.area, T.seconds, T.incidents),
        ...(r.data.accounts || []).filter((a) => a.downtime_seconds > 0).map((a) => el("tr", {},
          el("td", {}, a.account), el("td", {}, a.area), el("td", {}, a.downtime_seconds),
          el("td", {}, a.incidents.map((i) => i.id).join(" ")))));
    }}}, T.downtime), down);
  app.append(el("section", {}, lookup), registry, el("section", {}, statement), incidents, downtime);
}

function bars(days) {
  // Offered against payable calls per day, as an SVG a screen reader can name.
  const ns = "http://www.w3.org/2000/svg", w = 16, h = 120;
  const max = Math.max(1, ...days.map((d) => d.offered));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${T.statement}: ${T.per_day}`);
  svg.setAttribute("width", days.length * w * 2 + 10);
  svg.setAttribute("height", h + 20);
  days.forEach((d, i) => {
    for (const [j, key] of [[0, "offered"], [1, "payable"]].entries()) {
      const r = document.createElementNS(ns, "rect"), v = d[key[1]];
      r.setAttribute("class", `bar-${key[1]}`);
      r.setAttribute("x", i * w * 2 + j * w);
      r.setAttribute("y", h - (v / max) * h);
      r.setAttribute("width", w - 2);
      r.setAttribute("height", (v / max) * h);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${d.date} ${T[key[1]]} ${v}`;
      r.append(title);
      svg.append(r);
    }
  });
  return svg;
}

// -- the engineers' tickets ------------------------------------------------------
function tickets() {
  const list = el("table", {"aria-label": T.open_tickets});
  const status = el("p", {role: "status"});
  async function load() {
    const r = await api("GET", "/api/v1/tickets");
    const open = (r.data.tickets || []).filter((t) => t.state !== "closed");
    list.replaceChildren(header(T.number, T.account, T.problem, T.due, T.state, T.actions),
      ...open.map((t) => el("tr", {}, el("td", {}, t.number), el("td", {}, t.account), el("td", {}, t.problem),
        el("td", {class: t.overdue ? "late" : ""}, t.due ? new Date(t.due).toLocaleString(S.lang) : "—"),
        el("td", {}, L("state", t.state)),
        el("td", {}, ...(S.ticket_moves[t.state] || []).map((s) => el("button", {type: "button", "aria-label": `${t.number} → ${L("state", s)}`,
          on: {click: async () => { const x = await api("POST", `/api/v1/tickets/${t.number}/events`, {state: s});
                                    say(status, x.status < 300 ? `${t.number}: ${L("state", s)}` : apiError(x)); load(); }}}, L("state", s)))))));
  }
  app.append(el("section", {"aria-label": T.open_tickets}, el("h2", {}, T.open_tickets), list), status);
  load();
  live("", {queues(d) { if (d.tickets_head !== seen) { seen = d.tickets_head; load(); } }});
}
let seen = null;

({desk, board, office, tickets})[S.page]();
