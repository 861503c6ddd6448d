import {words, root, label, el, api, say, apiError, header, live} from "./console.js";

// The supervisor's board: first-line's service level, the live queues (a waiting
// caller may be moved to common), complaints.
function board() {
  const queues = el("section", {"aria-label": words.queues}, el("h2", {}, words.queues));
  const table = el("table", {});
  queues.append(table);
  const out = el("p", {role: "status"});
  const callInput = el("input", {id: "c-call", required: true});
  const textInput = el("input", {id: "c-text", required: true});
  const form = el("form", {"aria-label": words.complaint_for_call, on: {submit: async (e) => {
      e.preventDefault();
      const r = await api("POST", "/api/v1/complaints", {call: callInput.value, text: textInput.value});
      say(out, r.status < 300 ? `${words.number} ${r.data.number} (${r.data.operator})` : apiError(r));
    }}},
    el("h2", {}, words.complaint_for_call),
    el("label", {for: "c-call"}, words.call + " "), callInput, " ",
    el("label", {for: "c-text"}, words.text + " "), textInput, " ",
    el("button", {type: "submit"}, words.file_complaint), out);
  const complaints = el("section", {"aria-label": words.complaints}, el("h2", {}, words.complaints));
  const list = el("ul", {});
  complaints.append(list);
  const level = el("p", {role: "status", "aria-label": words.service_level});
  const callbacks = el("section", {"aria-label": words.callbacks}, el("h2", {}, words.callbacks));
  const pending = el("ul", {});
  callbacks.append(pending);
  root.append(el("section", {"aria-label": words.service_level}, el("h2", {}, words.service_level), level),
             queues, callbacks, el("section", {}, form), complaints);
  live("", {queues(d) {
    const sl = d.service_level;
    say(level, `${sl.queue}, ${sl.threshold_seconds} ${words.seconds_short}: ${words.now} ${sl.waiting_within}/${sl.waiting}` +
        ` · ${words.today} ${sl.today_share === null ? "—" : (sl.today_share * 100).toFixed(1) + " %"} (${sl.today_offered})`);
    table.replaceChildren(header(words.queue, words.waiting, words.agents),
      ...Object.entries(d.queues).map(([q, v]) => el("tr", {},
        el("td", {}, q),
        el("td", {}, ...v.waiting.map((w) => el("span", {class: w.wait_seconds > v.threshold_seconds ? "late" : ""},
          `${w.callback ? "↩ " + words.callback + " " : ""}${w.caller || w.uniqueid} ${w.wait_seconds.toFixed(0)} ${words.seconds_short} `,
          q === "common" || w.callback ? "" : el("button", {type: "button", "aria-label": `${words.move} ${w.caller || w.uniqueid} → common`,
            on: {click: () => api("POST", `/api/v1/calls/${w.uniqueid}/move?pbx=${w.pbx}`, {queue: "common"})
              .then((r) => say(out, r.status < 300 ? `${words.move} ✓` : apiError(r)))}}, `${words.move} → common`), " "))),
        el("td", {}, v.agents.map((a) => `${a.name}: ${label("agent", a.state)}`).join(", ")))));
    pending.replaceChildren(...(d.callbacks.length ? d.callbacks.map((c) => el("li", {},
      `${c.number} · ${c.queue}${c.position === null ? "" : ` ${words.place} ${c.position}`} · ` +
      `${label("callback", c.state)} · ${words.attempts} ${c.attempts}`)) : [el("li", {}, words.no_callbacks)]));
    list.replaceChildren(...d.complaints.map((c) => el("li", {}, `${c.number} ${c.operator} ${label("state", c.state)}`)));
  }});
}

board();
