import {words, root, label, el, api, say, apiError, header} from "./console.js";

// The provider's office: a number looked up, the registry verified, the statement
// (a chart and its CSV), incidents opened and closed, the downtime.
function office() {
  const found = el("pre", {role: "status", "aria-label": words.find_number});
  const number = el("input", {id: "o-number", inputmode: "numeric"});
  const lookup = el("form", {"aria-label": words.find_number, on: {submit: async (e) => {
      e.preventDefault();
      const n = number.value.trim();
      const kind = {"1": "tickets", "2": "complaints", "3": "claims"}[n[0]] || "tickets";
      const r = await api("GET", `/api/v1/${kind}/${encodeURIComponent(n)}`);
      say(found, r.status < 300 ? `${label("kind", r.data.kind)} ${r.data.number}: ${label("state", r.data.state)}` +
          (r.data.operator ? ` · ${r.data.operator}` : "") : apiError(r));
    }}}, el("h2", {}, words.find_number), el("label", {for: "o-number"}, words.number + " "), number, " ",
    el("button", {type: "submit"}, words.find), found);
  const chain = el("p", {role: "status", "aria-label": words.registry});
  const registry = el("section", {"aria-label": words.registry}, el("h2", {}, words.registry),
    el("button", {type: "button", on: {click: async () => {
      const r = await api("GET", "/api/v1/registry");
      say(chain, r.data.intact ? `✓ ${r.data.entries.length} · ${r.data.head.hash.slice(0, 16)}` : `✗ ${r.data.problem || apiError(r)}`);
    }}}, words.verify), chain);
  const today = new Date(), first = new Date(today.getFullYear(), today.getMonth(), 1);
  const iso = (d) => d.toISOString().slice(0, 10);
  const from = el("input", {id: "s-from", type: "date", value: iso(first)});
  const to = el("input", {id: "s-to", type: "date", value: iso(new Date(today.getTime() + 86400000))});
  const chart = el("div", {id: "chart"});
  const csv = el("a", {href: "#"}, words.download_csv);
  const statement = el("form", {"aria-label": words.statement, on: {submit: async (e) => {
      e.preventDefault();
      const q = `from=${from.value}&to=${to.value}`;
      csv.href = `/console/statement.csv?${q}`;
      const r = await api("GET", `/api/v1/reports/billing?${q}`);
      if (r.status >= 300) { say(chart, apiError(r)); return; }
      chart.replaceChildren(bars(r.data.days));
    }}}, el("h2", {}, words.statement), el("label", {for: "s-from"}, words.from + " "), from, " ",
    el("label", {for: "s-to"}, words.to + " "), to, " ", el("button", {type: "submit"}, words.show), " ", csv, chart);
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
  const down = el("table", {"aria-label": words.downtime});
  const downtime = el("section", {"aria-label": words.downtime}, el("h2", {}, words.downtime),
    el("button", {type: "button", on: {click: async () => {
      const r = await api("GET", `/api/v1/reports/downtime?from=${from.value}&to=${to.value}`);
      down.replaceChildren(header(words.account, words.area, words.seconds, words.incidents),
        ...(r.data.accounts || []).filter((a) => a.downtime_seconds > 0).map((a) => el("tr", {},
          el("td", {}, a.account), el("td", {}, a.area), el("td", {}, a.downtime_seconds),
          el("td", {}, a.incidents.map((i) => i.id).join(" ")))));
    }}}, words.downtime), down);
  root.append(el("section", {}, lookup), registry, el("section", {}, statement), incidents, downtime);
}

function bars(days) {
  // Offered against payable calls per day, as an SVG a screen reader can name.
  const ns = "http://www.w3.org/2000/svg", w = 16, h = 120;
  const max = Math.max(1, ...days.map((d) => d.offered));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${words.statement}: ${words.per_day}`);
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
      title.textContent = `${d.date} ${words[key[1]]} ${v}`;
      r.append(title);
      svg.append(r);
    }
  });
  return svg;
}

office();
