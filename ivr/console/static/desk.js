import {settings, words, root, label, el, api, say, apiError, live} from "./console.js";

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
  root.append(card, el("p", {}, el("label", {for: "problem"}, words.problem + " "), problem), toolbar, why,
             el("p", {}, el("label", {for: "disposition"}, words.disposition + " "), select, " ", save), status);

  live(`?member=${encodeURIComponent(settings.member)}`, {
    answered(c) {
      call = c; warned = false;
      card.replaceChildren(
        el("h2", {}, `${words.caller}: ${c.caller || "—"}`),
        el("p", {}, `${words.account}: ${c.account || "—"} · ${c.area || "—"} · ${(c.wait_ms / 1000).toFixed(1)} ${words.seconds_short}`),
        c.incident ? el("p", {class: "incident", role: "note"}, c.incident.message) : "",
        el("h3", {}, words.recent_calls),
        el("ul", {}, ...c.recent.map((r) => el("li", {class: r.repeat ? "repeat" : ""},
          `${new Date(r.at * 1000).toLocaleString(settings.lang)} ${label("outcome", r.outcome)}${r.repeat ? ` (${words.repeat})` : ""}`))),
        el("h3", {}, words.open_items),
        el("ul", {}, ...c.open.map((i) => el("li", {}, `${label("kind", i.kind)} ${i.number}: ${label("state", i.state)}`))));
      for (const [name, b] of Object.entries(buttons)) b.disabled = name === "end";
      buttons.escalate.disabled = !c.can_escalate;
      say(why, c.can_escalate ? "" : `${words.escalate}: ${words.incident_blocks}`);
      select.disabled = save.disabled = false;
    },
    ended() { for (const b of Object.values(buttons)) b.disabled = true; },
  });
}

desk();
