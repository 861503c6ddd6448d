import {words, el, header} from "./console.js";
import {fill, ticks} from "./format.js";

// The office's statement (GET /api/v1/reports/billing) drawn: a column a day, its height the
// calls offered, stacked by what became of them, with axes, a legend and a text
// alternative; then the same figures as a table.

const NS = "http://www.w3.org/2000/svg";
// Bottom up, as the statement's categories (reports/billing.py): every call in one.
const SERIES = [["payable", words.col_payable, "#2e7d32"], ["answered_late", words.answered_late, "#a85d00"],
                ["timeout", words.col_moved, "#1f5fa8"], ["abandoned", words.col_abandoned, "#b3261e"],
                ["other", words.other, "#6b6b6b"]];
const W = 960, H = 340, LEFT = 52, RIGHT = 12, TOP = 76, BOTTOM = 40, FONT = "13px system-ui, sans-serif";

// How wide `text` is drawn in the chart's font (a canvas measures it; a guess without one).
function width(text) {
  const ctx = document.createElement("canvas").getContext("2d");
  if (!ctx) return text.length * 8;
  ctx.font = FONT;
  return ctx.measureText(text).width;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// The period the statement's days cover: its first and last day (the `to` is excluded).
export function period(data) {
  const days = data.days || [];
  return days.length ? {1: days[0].date, 2: days[days.length - 1].date} : {1: "—", 2: "—"};
}

export function chart(data) {
  const days = data.days || [], n = Math.max(1, days.length);
  const marks = ticks(Math.max(0, ...days.map((d) => d.offered)));
  const top = marks[marks.length - 1], plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
  const y = (v) => TOP + plotH - (v / top) * plotH, slot = plotW / n;
  const barW = Math.max(3, Math.min(34, slot * 0.68));
  const root = svg("svg", {role: "img", "aria-label": fill(words.chart_name, period(data)),
                           viewBox: `0 0 ${W} ${H}`, class: "chart"});
  // The legend, in one row above the plot.
  let x = LEFT;
  for (const [, name, colour] of SERIES) {
    root.append(svg("rect", {x, y: 8, width: 14, height: 14, fill: colour}),
                svg("text", {x: x + 20, y: 20, class: "legend"}, name));
    x += 20 + width(name) + 22;
  }
  root.append(svg("text", {x: LEFT, y: 42, class: "legend"}, words.offered_is));
  // The y axis: its marks, grid lines and what it counts.
  for (const v of marks) {
    root.append(svg("line", {x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v), class: v ? "grid" : "axis"}),
                svg("text", {x: LEFT - 8, y: y(v) + 4, class: "tick", "text-anchor": "end"}, v));
  }
  root.append(svg("text", {x: 4, y: TOP - 14, class: "tick"}, words.calls));
  // A column a day, and the x axis: the day of the month (every other one when crowded).
  const every = slot < 22 ? 2 : 1;
  days.forEach((d, i) => {
    const cx = LEFT + slot * (i + 0.5);
    let base = 0;
    for (const [key, name, colour] of SERIES) {
      const v = d[key];
      if (!v) continue;
      root.append(svg("rect", {x: cx - barW / 2, y: y(base + v), width: barW, height: y(base) - y(base + v),
                               fill: colour, stroke: "#fff", "stroke-width": 1},
                      svg("title", {}, `${d.date} · ${name}: ${v}`)));
      base += v;
    }
    if (d.offered) {
      root.append(svg("text", {x: cx, y: y(d.offered) - 5, class: "value", "text-anchor": "middle"},
                      d.offered));
    }
    if (i % every === 0 || i === days.length - 1) {
      root.append(svg("text", {x: cx, y: TOP + plotH + 16, class: "tick", "text-anchor": "middle"},
                      Number(d.date.slice(8))));
    }
  });
  const first = days[0] ? days[0].date.slice(0, 7) : "";
  const last = days.length ? days[days.length - 1].date.slice(0, 7) : "";
  root.append(svg("text", {x: LEFT + plotW / 2, y: H - 4, class: "tick", "text-anchor": "middle"},
                  `${words.date}: ${first === last ? first : `${first} – ${last}`}`));
  return root;
}

function share(c) { return c.offered ? `${(100 * c.payable / c.offered).toFixed(1)} %` : "—"; }

function row(cells, head, quiet) {
  return el("tr", quiet ? {class: "quiet"} : {}, head,
            ...cells.map((v) => el("td", {class: "num"}, v)));
}

export function table(data) {
  const counts = (c) => [c.offered, c.payable, c.answered_late, c.timeout, c.abandoned, c.other, share(c)];
  const t = data.totals || {};
  return el("table", {class: "figures"}, el("caption", {}, words.per_day_table),
    el("thead", {}, header(words.date, words.col_offered, words.col_payable, words.answered_late, words.col_moved,
                           words.col_abandoned, words.other, words.col_share)),
    el("tbody", {}, ...(data.days || []).map((d) =>
      row(counts(d), el("th", {scope: "row"}, d.date), !d.offered))),
    el("tfoot", {}, row(counts(t), el("th", {scope: "row"}, words.total), false)));
}
