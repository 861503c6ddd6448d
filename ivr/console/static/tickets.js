import {settings, words, root, label, el, api, say, apiError, header, live} from "./console.js";

// The engineers' tickets: the open ones, each moved on by a button; the list is
// reloaded when the registry's head moves.
function tickets() {
  const list = el("table", {"aria-label": words.open_tickets});
  const status = el("p", {role: "status"});
  async function load() {
    const r = await api("GET", "/api/v1/tickets");
    const open = (r.data.tickets || []).filter((t) => t.state !== "closed");
    list.replaceChildren(header(words.number, words.account, words.problem, words.due, words.state, words.actions),
      ...open.map((t) => el("tr", {}, el("td", {}, t.number), el("td", {}, t.account), el("td", {}, t.problem),
        el("td", {class: t.overdue ? "late" : ""}, t.due ? new Date(t.due).toLocaleString(settings.lang, {dateStyle: "medium", timeStyle: "short"}) : "—"),
        el("td", {}, label("state", t.state)),
        el("td", {}, ...(settings.ticket_moves[t.state] || []).map((s) => el("button", {type: "button", "aria-label": `${t.number} → ${label("state", s)}`,
          on: {click: async () => { const x = await api("POST", `/api/v1/tickets/${t.number}/events`, {state: s});
                                    say(status, x.status < 300 ? `${t.number}: ${label("state", s)}` : apiError(x)); load(); }}}, label("state", s)))))));
    none.hidden = open.length > 0;
  }
  const none = el("p", {class: "none", hidden: true}, words.no_tickets);
  root.append(el("section", {"aria-label": words.open_tickets}, el("h2", {}, words.open_tickets), list, none), status);
  load();
  let seen = null;
  live("", {queues(d) { if (d.tickets_head !== seen) { seen = d.tickets_head; load(); } }});
}

tickets();
