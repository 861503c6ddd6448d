import {settings, words, root, label, el, api, say, apiError, header, live} from "./console.js";

// The operator's desk: the caller's card when a call is answered, and what may be
// done with the call (each through ivr's API, as the session's operator).
function desk() {
  const card = el("section", {"aria-label": words.caller, "aria-live": "polite", id: "card"}, words.waiting_call);
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
  const toolbar = el("div", {role: "toolbar", "aria-label": words.desk},
    act("escalate", words.escalate, () => post(`/api/v1/calls/${call.uniqueid}/escalate`, undefined, () => words.escalate + " ✓")),
    act("ticket", words.file_ticket, () => post("/api/v1/tickets",
        {call: call.uniqueid, account: call.account || undefined,
         problem: problem.value || "—"}, (d) => `${words.number} ${d.number}`)),
    act("warn", words.warn, async () => { const r = await post(`/api/v1/calls/${call.uniqueid}/warn`, undefined, () => words.warn + " ✓");
                                      if (r.status < 300) { warned = true; buttons.end.disabled = false; } }),
    act("end", words.end_abuse, () => post(`/api/v1/calls/${call.uniqueid}/end`, {reason: "abuse"}, () => words.end_abuse + " ✓")),
    act("supervisor", words.to_supervisor, () => post(`/api/v1/calls/${call.uniqueid}/transfer`, {to: "supervisor"}, (d) => `${words.to_supervisor}: ${d.to}`)),
    act("readback", words.read_back, () => post(`/api/v1/calls/${call.uniqueid}/transfer`, {to: "read_back"}, (d) => `${words.read_back}: ${d.to}`)));
  const select = el("select", {id: "disposition", disabled: true},
    ...settings.dispositions.map((c) => el("option", {value: c}, label("disposition", c))));
  const save = el("button", {type: "button", disabled: true, on: {click: () =>
    post(`/api/v1/calls/${call.uniqueid}/disposition`, {code: select.value}, () => words.disposition + " ✓")}}, words.save);
  buttons.escalate.setAttribute("aria-describedby", "escalate-why");
  buttons.end.classList.add("danger");
  // The caller on the left, what to do with the call beside it: all of it on one screen.
  const actions = el("section", {"aria-labelledby": "actions", class: "actions"}, el("h2", {id: "actions"}, words.actions),
    el("p", {class: "field"}, el("label", {for: "problem"}, words.problem), problem), toolbar, why,
    el("p", {class: "field"}, el("label", {for: "disposition"}, words.disposition), el("span", {class: "row"}, select, save)), status);
  root.append(el("div", {class: "desk"}, card, actions));

  // The call's timer: from the answer (the card says how long ago, by ivr's clock),
  // counted on by the page's own clock each second; stopped when the call ends.
  const timer = el("span", {role: "timer", "aria-live": "off", id: "call-timer"}, "0:00");   // not read out each second
  let tick = null;
  const stop = () => { if (tick !== null) clearInterval(tick); tick = null; };
  const start = (onCallMs) => {
    stop();
    const from = performance.now() - onCallMs;
    const show = () => say(timer, clock((performance.now() - from) / 1000));
    show();
    tick = setInterval(show, 1000);
  };

  live(`?member=${encodeURIComponent(settings.member)}`, {
    answered(c) {
      call = c; warned = false;
      card.replaceChildren(
        el("h2", {}, `${words.caller}: ${c.caller || "—"}`),
        facts([words.account, c.account || "—"], [words.area, c.area || "—"],
              [words.waited, duration(c.wait_ms)], [words.on_call, timer]),
        c.incident ? el("p", {class: "incident", role: "note"}, c.incident.message) : "",
        el("h3", {id: "recent-calls"}, words.recent_calls),
        c.recent.length ? table("recent-calls", [words.when, words.outcome, words.wait], c.recent.map((r) => el("tr", {class: r.repeat ? "repeat" : ""},
          el("td", {}, new Date(r.at * 1000).toLocaleString(settings.lang, {dateStyle: "medium", timeStyle: "short"})),
          el("td", {}, label("outcome", r.outcome), r.repeat ? el("strong", {}, ` · ${words.repeat}`) : ""),
          el("td", {}, duration(r.wait_ms)))))
          : el("p", {class: "none"}, words.no_recent),
        el("h3", {id: "open-items"}, words.open_items),
        c.open.length ? table("open-items", [words.number, words.kind, words.state], c.open.map((i) => el("tr", {},
          el("td", {}, i.number), el("td", {}, label("kind", i.kind)), el("td", {}, label("state", i.state)))))
          : el("p", {class: "none"}, words.no_open));
      start(c.on_call_ms || 0);
      for (const [name, b] of Object.entries(buttons)) b.disabled = name === "end";
      buttons.escalate.disabled = !c.can_escalate;
      say(why, c.can_escalate ? "" : `${words.escalate}: ${words.incident_blocks}`);
      select.disabled = save.disabled = false;
    },
    ended() {
      if (tick !== null) timer.after(el("span", {class: "ended"}, ` (${words.call_ended})`));
      stop();
      for (const b of Object.values(buttons)) b.disabled = true;
    },
  });
}

// A table named by its heading, with its column headers.
function table(heading, names, rows) {
  return el("table", {"aria-labelledby": heading}, el("thead", {}, header(...names)), el("tbody", {}, ...rows));
}

// The card's facts as name: value pairs (a description list).
function facts(...pairs) {
  return el("dl", {class: "facts"}, ...pairs.map(([name, value]) => el("div", {}, el("dt", {}, name), el("dd", {}, value))));
}

// 0:07, 12:30, 1:02:03
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds)), two = (n) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

// A wait in words: 4 s, 1 min 05 s
function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} ${words.seconds_short}`;
  return `${Math.floor(s / 60)} ${words.minutes_short} ${String(s % 60).padStart(2, "0")} ${words.seconds_short}`;
}

desk();
