// ivr console: formatting for people, pure (no page, no DOM), so Node.js runs it in
// the unit tests (tests/unit/test_office.py) as the browser does on the pages.

// A duration for a person: seconds under a minute ("59 s"), else hours and minutes to the
// nearest minute ("1 h 0 min", "25 h 1 min": a day is 24 h, as a bill counts it).
// `units` are the page's words for h, min and s.
export function duration(seconds, units) {
  const s = Math.max(0, Number(seconds) || 0);
  if (Math.round(s) < 60) return `${Math.round(s)} ${units.s}`;
  const minutes = Math.round(s / 60), h = Math.floor(minutes / 60), m = minutes % 60;
  return h ? `${h} ${units.h} ${m} ${units.min}` : `${m} ${units.min}`;
}

// The marks of an axis from 0 to at least `max`: at most 6, on a step of 1, 2 or 5 times
// a power of ten, whole numbers only (calls are counted).
export function ticks(max) {
  const top = Math.max(1, Number(max) || 0), raw = top / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((n) => n * power).find((n) => n >= raw));
  const marks = [];
  for (let v = 0; v < top + step; v += step) marks.push(v);
  return marks;
}

// A sentence of the page's words with its {names} filled in.
export function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
}

// A moment (ISO 8601) in the reader's time zone and language, on a 24-hour clock:
// "Nov 30, 2026, 00:53", "30 нояб. 2026 г., 00:53".
export function when(iso, lang) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(lang, {day: "numeric", month: "short", year: "numeric",
                                 hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
}
