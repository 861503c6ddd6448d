import {words, root, el, live} from "./console.js";
import {caller, oldest, agent, todayLine, levelChart, percent, stamp} from "./figures.js";

// The wallboard, for a TV: the board's figures in big type and without a control.
// It redraws at each push, and comes back by itself when ivr does (a restart): the
// EventSource reconnects, and a stream silent for WATCHDOG_MS is opened again.
const WATCHDOG_MS = 15000;
const SHOWN = 6;      // waiting callers listed in a queue's tile; the rest are counted

function wall() {
  const level = el("p", {class: "kpi", role: "status", "aria-label": words.service_level});
  const lost = el("p", {class: "lost", role: "alert", hidden: true}, words.reconnecting);
  const tiles = el("div", {class: "tiles"});
  const chart = el("section", {class: "chart", "aria-label": `${words.service_level}, ${words.by_interval}`});
  root.append(lost, level, tiles, chart);
  let today = {};
  let heard = Date.now();
  const handlers = {today(d) {
    today = d.queues;
    chart.replaceChildren(...levelChart(d.chart, 1200, 320));
  }, queues(d) {
    heard = Date.now();
    lost.hidden = true;
    stamp();
    const sl = d.service_level;
    level.replaceChildren(
      el("span", {}, el("b", {}, percent(sl.today_share)), ` ${words.service_level} ${words.today} (${sl.today_offered} ${words.offered})`),
      el("span", {}, el("b", {}, `${sl.waiting_within}/${sl.waiting}`), ` ${sl.queue} ≤ ${sl.threshold_seconds} ${words.seconds_short} ${words.now}`));
    tiles.replaceChildren(...Object.entries(d.queues).map(([q, v]) => el("section", {class: "tile", "aria-label": q},
      el("h2", {}, q, " ", el("span", {class: "count"}, `${v.waiting.length} ${words.waiting.toLowerCase()}`)),
      el("p", {class: "oldest"}, `${words.oldest}: `, oldest(v)),
      el("ul", {class: "callers"}, ...v.waiting.slice(0, SHOWN).map((w) => el("li", {}, caller(w, v.threshold_seconds))),
         ...(v.waiting.length > SHOWN ? [el("li", {}, `+${v.waiting.length - SHOWN}`)] : [])),
      el("ul", {class: "agents"}, ...(v.agents.length ? v.agents.map((a) => el("li", {}, agent(a))) : [el("li", {}, words.no_agents)])),
      el("p", {class: "day"}, `${words.today_figures}: `, todayLine(today[q])))));
  }};
  let source = live("", handlers);
  setInterval(() => {
    const silent = Date.now() - heard;
    if (silent > 3000) lost.hidden = false;
    if (silent > WATCHDOG_MS) {          // a stream that gave up, or hangs: a new one
      source.close();
      source = live("", handlers);
      heard = Date.now();
    }
  }, 1000);
}

wall();
