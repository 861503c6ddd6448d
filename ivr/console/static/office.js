import {words, root, label, el, api, say, apiError, header, settings} from "./console.js";
import {duration, fill, when} from "./format.js";
import {chart, period, table} from "./statement.js";

// The provider's office: a number looked up (its card and history), the registry
// verified, the statement (a chart, its table and its CSV), incidents opened and
// closed, the downtime per account with the claims that cover it.
function units() { return {h: words.h, min: words.min, s: words.seconds_short}; }
function at(iso) { return when(iso, settings.lang); }
function capital(text) { return text.charAt(0).toUpperCase() + text.slice(1); }
function who(by) { return by ? `${label("role", by.role)} ${by.name}` : "—"; }

// A date input's value for a local day (toISOString would give the UTC one).
function day(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function office() {
  const found = el("p", {role: "status", "aria-label": words.find_number});
  const card = el("div", {});
  const number = el("input", {id: "o-number", inputmode: "numeric", autocomplete: "off"});
  const find = async (text) => {
    const n = text.replace(/[\s-]/g, "");
    card.replaceChildren();
    if (!/^[123][0-9]{7,}$/.test(n)) { found.className = "problem"; say(found, words.number_format); return; }
    const r = await api("GET", `/api/v1/${{"1": "tickets", "2": "complaints", "3": "claims"}[n[0]]}/${n}`);
    if (r.status >= 300) {
      found.className = "problem";
      const known = ["bad_number", "no_number"].includes(r.data.code);
      say(found, known ? `${label("error", r.data.code)} (${n})` : apiError(r));
      return;
    }
    found.className = "";
    say(found, `${label("kind", r.data.kind)} ${r.data.number}: ${label("state", r.data.state)}`);
    card.replaceChildren(itemCard(r.data));
  };
  const lookup = el("form", {"aria-label": words.find_number, on: {submit: (e) => {
      e.preventDefault();
      find(number.value);
    }}}, el("h2", {}, words.find_number), el("label", {for: "o-number"}, words.number + " "), number, " ",
    el("button", {type: "submit"}, words.find), found, card);
  const show = (n) => { number.value = n; find(n); lookup.scrollIntoView(); };

  const chain = el("p", {role: "status", "aria-label": words.registry});
  const registry = el("section", {"aria-label": words.registry}, el("h2", {}, words.registry),
    el("button", {type: "button", on: {click: async () => {
      const r = await api("GET", "/api/v1/registry");
      say(chain, r.data.intact ? `✓ ${r.data.entries.length} · ${r.data.head.hash.slice(0, 16)}` : `✗ ${r.data.problem || apiError(r)}`);
    }}}, words.verify), chain);

  const today = new Date();
  const from = el("input", {id: "s-from", type: "date", value: day(new Date(today.getFullYear(), today.getMonth(), 1))});
  const to = el("input", {id: "s-to", type: "date",
                          value: day(new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1))});
  const drawn = el("div", {class: "drawn"});
  const csv = el("a", {href: "#"}, words.download_csv);
  const asked = {statement: 0, downtime: 0};     // only the last answer asked for is shown
  const showStatement = async () => {
    const q = `from=${from.value}&to=${to.value}`, mine = ++asked.statement;
    csv.href = `/console/statement.csv?${q}`;
    const r = await api("GET", `/api/v1/reports/billing?${q}`);
    if (mine !== asked.statement) return;
    if (r.status >= 300) { drawn.replaceChildren(el("p", {class: "problem", role: "alert"}, apiError(r))); return; }
    drawn.replaceChildren(el("h3", {}, fill(words.chart_title, period(r.data))), chart(r.data), table(r.data));
  };
  const statement = el("form", {"aria-label": words.statement, on: {submit: (e) => {
      e.preventDefault();
      showStatement();
      showDowntime();
    }}}, el("h2", {}, words.statement), el("label", {for: "s-from"}, words.from + " "), from, " ",
    el("label", {for: "s-to"}, words.to + " "), to, " ", el("button", {type: "submit"}, words.show), " ", csv, drawn);

  const incidentList = el("ul", {});
  const listIncidents = () => api("GET", "/api/v1/incidents").then((r) => incidentList.replaceChildren(
    ...(r.data.incidents || []).map((i) => el("li", {}, `${i.id} ${i.area}: ${i.message} `,
      el("button", {type: "button", "aria-label": `${words.close} ${i.id}`, on: {click: () =>
        api("DELETE", `/api/v1/incidents/${i.id}`).then(listIncidents)}}, words.close)))));
  const area = el("input", {id: "i-area", required: true}), message = el("input", {id: "i-message", required: true});
  const hours = el("input", {id: "i-hours", type: "number", min: "1", value: "4"});
  const opened = el("p", {role: "status", "aria-label": words.open_incident});
  const incidents = el("section", {"aria-label": words.incidents}, el("h2", {}, words.incidents), incidentList,
    el("form", {"aria-label": words.open_incident, on: {submit: async (e) => {
      e.preventDefault();
      const r = await api("POST", "/api/v1/incidents", {area: area.value, message: message.value,
                                                       expires_in: Number(hours.value) * 3600});
      say(opened, r.status < 300 ? r.data.id : apiError(r));
      listIncidents();
    }}}, el("label", {for: "i-area"}, words.area + " "), area, " ", el("label", {for: "i-message"}, words.message + " "),
      message, " ", el("label", {for: "i-hours"}, words.hours + " "), hours, " ",
      el("button", {type: "submit"}, words.open_incident), opened));
  listIncidents();

  const down = el("div", {});
  const showDowntime = async () => {
    const mine = ++asked.downtime;
    const r = await api("GET", `/api/v1/reports/downtime?from=${from.value}&to=${to.value}`);
    if (mine !== asked.downtime) return;
    if (r.status >= 300) { down.replaceChildren(el("p", {class: "problem", role: "alert"}, apiError(r))); return; }
    const last = new Date(`${to.value}T00:00`);
    last.setDate(last.getDate() - 1);        // `to` is the day after the period
    const title = fill(words.downtime_of, {1: from.value, 2: day(last)});
    const hit = (r.data.accounts || []).filter((a) => a.downtime_seconds > 0)
      .sort((a, b) => b.downtime_seconds - a.downtime_seconds || a.account.localeCompare(b.account));
    if (!hit.length) { down.replaceChildren(el("p", {}, `${title}: ${words.no_downtime}`)); return; }
    // Each incident once, above the accounts it covered (an area's accounts share it).
    const seen = new Map();
    for (const a of hit) for (const i of a.incidents) seen.set(i.id, i);
    const claimed = (a) => (a.claims.length ? a.claims.map((c) => el("div", {},
      el("button", {type: "button", class: "link", "aria-label": `${words.find} ${c.number}`,
                    on: {click: () => show(c.number)}}, c.number),
      ` ${label("state", c.state)} · ${duration(c.downtime_seconds, units())}`))
      : [el("span", {class: "quiet"}, words.no_claim)]);
    down.replaceChildren(el("h3", {}, title),
      el("ul", {"aria-label": words.incidents}, ...[...seen.values()].map((i) => el("li", {},
        el("strong", {}, i.id), ` · ${i.area} · ${duration((i.to_us - i.from_us) / 1e6, units())}: ${i.message}`))),
      el("div", {class: "scroll", role: "region", tabindex: "0", "aria-label": `${words.downtime}: ${hit.length}`},
        el("table", {"aria-label": words.downtime},
          el("thead", {}, header(words.account, words.area, words.downtime, words.incidents, words.claim)),
          el("tbody", {}, ...hit.map((a) => el("tr", {},
            el("th", {scope: "row"}, a.account), el("td", {}, a.area),
            el("td", {class: "num"}, duration(a.downtime_seconds, units())),
            el("td", {}, a.incidents.map((i) => i.id).join(" ")), el("td", {}, ...claimed(a))))))));
  };
  const downtime = el("section", {"aria-label": words.downtime}, el("h2", {}, words.downtime),
    el("button", {type: "button", on: {click: showDowntime}}, words.show_downtime), down);

  root.append(el("section", {}, lookup), el("section", {}, statement), downtime, incidents, registry);
  showStatement();
  showDowntime();
}

// A ticket, complaint or claim as the API gives it: what it is, where it stands, its dates,
// who it concerns, and every change since it was filed.
function itemCard(item) {
  const facts = [[words.state, label("state", item.state) + (item.overdue ? ` · ${words.overdue}` : "")],
                 [words.filed, `${at(item.filed_at)} · ${who(item.filed_by)}`]];
  if (item.due) facts.push([item.kind === "complaint" ? words.deadline : words.due, at(item.due)]);
  if (item.operator) facts.push([words.operator, item.operator]);
  if (item.call_at) facts.push([words.call_at, at(item.call_at)]);
  if (item.caller) facts.push([words.caller, item.caller]);
  if (item.account) facts.push([words.account, `${item.account}${item.area ? ` · ${item.area}` : ""}`]);
  if (item.problem) facts.push([words.problem, item.problem]);
  if (item.text) facts.push([words.text, item.text]);
  if (item.kind === "claim") {
    facts.push([words.claimed, `${at(item.from)} – ${at(item.to)}`],
               [words.downtime, duration(item.downtime_seconds, units())]);
    if ((item.incidents || []).length) {
      facts.push([words.incidents, item.incidents.map((i) => `${i.id}: ${i.message}`).join("; ")]);
    }
  }
  const title = `${capital(label("kind", item.kind))} ${item.number}`;
  const changes = (item.events || []).map((e) => el("tr", {},
    el("td", {}, at(e.at)), el("td", {}, who(e.by)),
    el("td", {}, [e.state ? `${words.state}: ${label("state", e.state)}` : "",
                  e.note ? `${words.note}: ${e.note}` : ""].filter(Boolean).join(" · "))));
  return el("article", {class: "card", "aria-label": title}, el("h3", {}, title),
    el("dl", {}, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    el("table", {"aria-label": `${words.history}: ${title}`}, el("caption", {}, words.history),
      el("thead", {}, header(words.when, words.who, words.what)),
      el("tbody", {},
        el("tr", {}, el("td", {}, at(item.filed_at)), el("td", {}, who(item.filed_by)),
           el("td", {}, `${words.filed}: ${label("state", {ticket: "open", complaint: "received", claim: "filed"}[item.kind])}`)),
        ...changes)),
    changes.length ? "" : el("p", {class: "quiet"}, words.no_changes));
}

office();
