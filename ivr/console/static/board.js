import {words, root, label, el, api, say, apiError, header, live} from "./console.js";
import {caller, oldest, agent, todayLine, levelChart, stamp} from "./figures.js";

// The supervisor's board: first-line's service level now and its chart of the day,
// the live queues (each waiting caller's wait clock, late ones marked; a waiting
// caller may be moved to common; agents with their time in their state; today's
// figures per queue), callbacks, complaints.
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
  const chart = el("div", {class: "chart"});
  const callbacks = el("section", {"aria-label": words.callbacks}, el("h2", {}, words.callbacks));
  const pending = el("ul", {});
  callbacks.append(pending);
  root.append(el("section", {"aria-label": words.service_level}, el("h2", {}, words.service_level), level, chart),
             queues, callbacks, el("section", {}, form), complaints);
  let today = {};
  live("", {today(d) {
    today = d.queues;
    chart.replaceChildren(...levelChart(d.chart, 960, 190));   // low: the queues stay in view at 800 px
  }, queues(d) {
    stamp();
    const sl = d.service_level;
    say(level, `${sl.queue}, ${sl.threshold_seconds} ${words.seconds_short}: ${words.now} ${sl.waiting_within}/${sl.waiting}` +
        ` · ${words.today} ${sl.today_share === null ? "—" : (sl.today_share * 100).toFixed(1) + " %"} (${sl.today_offered})`);
    table.replaceChildren(header(words.queue, words.waiting, words.oldest, words.agents, words.today_figures),
      ...Object.entries(d.queues).map(([q, v]) => el("tr", {},
        el("td", {}, q),
        el("td", {}, ...(v.waiting.length ? v.waiting.map((w) => el("span", {}, caller(w, v.threshold_seconds, " ",
          q === "common" || w.callback ? "" : el("button", {type: "button", "aria-label": `${words.move} ${w.caller || w.uniqueid} → common`,
            on: {click: () => api("POST", `/api/v1/calls/${w.uniqueid}/move?pbx=${w.pbx}`, {queue: "common"})
              .then((r) => say(out, r.status < 300 ? `${words.move} ✓` : apiError(r)))}}, `${words.move} → common`)), " "))
          : [words.nobody_waiting])),
        el("td", {}, oldest(v)),
        el("td", {}, ...(v.agents.length ? v.agents.flatMap((a, i) => [i ? ", " : "", agent(a)]) : [words.no_agents])),
        el("td", {}, todayLine(today[q])))));
    pending.replaceChildren(...(d.callbacks.length ? d.callbacks.map((c) => el("li", {},
      `${c.number} · ${c.queue}${c.position === null ? "" : ` ${words.place} ${c.position}`} · ` +
      `${label("callback", c.state)} · ${words.attempts} ${c.attempts}`)) : [el("li", {}, words.no_callbacks)]));
    list.replaceChildren(...d.complaints.map((c) => el("li", {}, `${c.number} ${c.operator} ${label("state", c.state)}`)));
  }});
}

board();
