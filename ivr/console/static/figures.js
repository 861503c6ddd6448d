import {words, label, el, header} from "./console.js";

// What the board and the wall share: live wait clocks, the agents' times in their
// states, the figures of today, and first-line's service-level chart of the day
// (inline SVG, role img, with the same figures as a table for screen readers).

// A duration as a clock: 0:07, 4:31, 1:02:09.
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

export function percent(share) { return share === null || share === undefined ? "—" : `${(share * 100).toFixed(0)} %`; }

// Clocks tick in the page each second between pushes: each shows its seconds at the
// last push plus the time since (stamp()), and a wait clock turns late past its limit.
let pushedAt = performance.now();
export function stamp() { pushedAt = performance.now(); }
export function ticking(seconds, limit = null) {
  const node = el("span", {class: "clock", "data-s": seconds, "data-limit": limit ?? ""}, clock(seconds));
  return node;
}
function tick() {
  const since = (performance.now() - pushedAt) / 1000;
  for (const node of document.querySelectorAll(".clock")) {
    const s = Number(node.dataset.s) + since;
    node.textContent = clock(s);
    const limit = node.dataset.limit === "" ? null : Number(node.dataset.limit);
    const holder = node.closest(".caller");
    if (limit !== null && holder && s > limit && !holder.classList.contains("late")) markLate(holder);
  }
}
setInterval(tick, 1000);

// Late is a word and a symbol, not only a colour.
function markLate(holder) {
  holder.classList.add("late");
  holder.prepend(el("span", {class: "late-mark"}, `⚠ ${words.late} `));
}

// One waiting caller: who, and their wait clock (late past the queue's threshold).
export function caller(w, threshold, ...extra) {
  const node = el("span", {class: "caller"},
    `${w.callback ? "↩ " + words.callback + " " : ""}${w.caller || w.uniqueid} `,
    ticking(w.wait_seconds, threshold), ...extra);
  if (w.wait_seconds > threshold) markLate(node);
  return node;
}

export function oldest(v) {
  const longest = Math.max(0, ...v.waiting.map((w) => w.wait_seconds));
  return v.waiting.length ? ticking(longest) : "—";
}

// An agent: name, state, and the time in it.
export function agent(a) {
  return el("span", {class: `agent agent-${a.state}`}, `${a.name}: ${label("agent", a.state)} `,
    a.state_seconds === null || a.state_seconds === undefined ? "" : ticking(a.state_seconds));
}

// A queue's day: each figure kept whole on its line (no "moved" and "0" apart).
export function todayLine(t) {
  if (!t) return "—";
  const parts = [`${words.answered} ${t.answered}`, `${words.abandoned} ${t.abandoned}`, `${words.moved} ${t.moved}`];
  if (t.payable_share !== null) parts.push(`${words.payable} ${percent(t.payable_share)}`);
  return el("span", {class: "figures"}, ...parts.flatMap((p, i) => [i ? " · " : "", el("span", {}, p)]));
}

const NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// The chart's accessible name: it starts with the words "Service level".
export function chartName(c) {
  return `${words.service_level}, ${c.queue}, ${c.threshold_seconds} ${words.seconds_short}, ` +
    `${words.today}: ${percent(c.share)} (${c.offered} ${words.offered}), ${words.target} ${percent(c.target)}`;
}

// First-line's day in 15-minute intervals: offered calls as bars (right scale), the
// share answered within the threshold as a line with points (left scale, 0..100 %),
// the target as a dashed line; then the same figures as a table (screen readers).
export function levelChart(c, width = 960, height = 260) {
  const left = 56, right = 48, top = 14, bottom = 30;
  const w = width - left - right, h = height - top - bottom;
  const n = Math.max(c.intervals.length, 1), step = w / n;
  const most = Math.max(1, ...c.intervals.map((x) => x.offered));
  const y = (share) => top + h * (1 - share);
  const parts = [];
  for (const s of [0, 0.5, 1]) {
    parts.push(svg("line", {x1: left, x2: left + w, y1: y(s), y2: y(s), class: "grid"}),
               svg("text", {x: left - 6, y: y(s) + 4, "text-anchor": "end", class: "axis"}, percent(s)));
  }
  parts.push(svg("text", {x: left + w + 6, y: top + 4, class: "axis"}, `${most}`),
             svg("text", {x: left + w + 6, y: top + h + 4, class: "axis"}, "0"));
  c.intervals.forEach((x, i) => {
    const bh = h * x.offered / most;
    if (x.offered) parts.push(svg("rect", {x: left + i * step + step * 0.15, y: top + h - bh,
                                           width: step * 0.7, height: bh, class: "bar-offered"}));
    if (x.start.endsWith(":00")) parts.push(svg("text", {x: left + i * step, y: height - 8,
                                                        "text-anchor": "middle", class: "axis"}, x.start));
  });
  parts.push(svg("line", {x1: left, x2: left + w, y1: y(c.target), y2: y(c.target), class: "target"}),
             svg("text", {x: left + w - 4, y: y(c.target) - 6, "text-anchor": "end", class: "target-label"},
                 `${words.target} ${percent(c.target)}`));
  const points = c.intervals.map((x, i) => [x, left + i * step + step / 2]).filter(([x]) => x.share !== null);
  if (points.length > 1) parts.push(svg("polyline", {class: "sl-line", points: points.map(([x, px]) => `${px},${y(x.share)}`).join(" ")}));
  for (const [x, px] of points) parts.push(svg("circle", {cx: px, cy: y(x.share), r: 4,
    class: x.share < c.target ? "sl-point miss" : "sl-point"}));
  if (!c.offered) parts.push(svg("text", {x: left + w / 2, y: top + h * 0.55, "text-anchor": "middle",
                                         class: "empty"}, words.no_calls_today));
  parts.push(svg("line", {x1: left, x2: left, y1: top, y2: top + h, class: "axis-line"}),
             svg("line", {x1: left, x2: left + w, y1: top + h, y2: top + h, class: "axis-line"}));
  const image = svg("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": chartName(c),
                            class: "sl-chart"}, ...parts);
  const legend = el("p", {class: "legend", "aria-hidden": "true"},
    el("span", {class: "key key-line"}), ` ${words.share_within} ${c.threshold_seconds} ${words.seconds_short}  `,
    el("span", {class: "key key-bar"}), ` ${words.offered}  `,
    el("span", {class: "key key-target"}), ` ${words.target} ${percent(c.target)}`);
  return [image, legend, levelTable(c)];
}

function levelTable(c) {
  const rows = c.intervals.filter((x) => x.offered);
  return el("table", {class: "sr-only"},
    el("caption", {}, `${words.service_level}, ${c.queue}, ${words.by_interval}`),
    header(words.interval, words.offered_calls, `${words.within} ${c.threshold_seconds} ${words.seconds_short}`,
           words.share, words.abandoned_calls),
    ...(rows.length ? rows.map((x) => el("tr", {}, el("td", {}, x.start), el("td", {}, x.offered),
                                         el("td", {}, x.within), el("td", {}, percent(x.share)),
                                         el("td", {}, x.abandoned)))
      : [el("tr", {}, el("td", {colspan: 5}, words.no_calls_today))]));
}
