// The chart of one instrument's session, drawn from plain data: minute closes as a line, alerts as markers.

import { readClock, zoneName } from "./clock.js";

const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 70, right: 22, top: 20, bottom: 28 }; // right and top: room for a count badge
const GAP_MINUTES = 5; // longer without a bar (a lunch break, a halt): the line breaks there
const NEAR = 4; // alerts drawn closer than this (in chart units) share one marker
const LABEL_ROOM = 60; // chart units between two time labels on the axis
const DOT = 7;
const BADGE = 8;

/** Minutes since midnight of "HH:MM". */
export function minuteOf(minute) {
  const [h, m] = minute.split(":").map(Number);
  return h * 60 + m;
}

/** The bars in runs with no gap over GAP_MINUTES; t gives a bar's minute on the chart. */
export function runs(bars, t) {
  const found = [];
  let run = [];
  for (const bar of bars) {
    if (run.length && t(bar.minute) - t(run[run.length - 1].minute) > GAP_MINUTES) {
      found.push(run);
      run = [];
    }
    run.push(bar);
  }
  if (run.length) found.push(run);
  return found;
}

/** Alerts that would be drawn on top of each other, as one group each: [{x, y, alerts}],
    oldest first. */
export function groups(points) {
  const found = [];
  for (const point of points) {
    const near = found.find((g) => Math.abs(g.x - point.x) < NEAR && Math.abs(g.y - point.y) < NEAR);
    if (near) near.alerts.push(point.alert);
    else found.push({ x: point.x, y: point.y, alerts: [point.alert] });
  }
  return found;
}

/** The session's chart as an SVG element, in the exchange's time (bars.timezone), drawn
    for a box that wide: its text stays at its size on a phone too. */
export function chartSvg(instrument, session, bars, alerts, width) {
  const W = Math.max(280, Math.round(width) || 600);
  const H = Math.round(Math.min(280, Math.max(170, W * 0.45)));
  const zone = bars.timezone;
  const list = bars.bars;
  const first = minuteOf(list[0].minute);
  const t = (minute) => (minuteOf(minute) - first + 1440) % 1440; // a session may pass midnight
  const span = Math.max(1, t(list[list.length - 1].minute));
  let low = Math.min(...list.map((b) => b.low), ...alerts.map((a) => a.price));
  let high = Math.max(...list.map((b) => b.high), ...alerts.map((a) => a.price));
  if (high === low) { high += 1; low -= 1; }
  const x = (m) => PAD.left + (Math.min(Math.max(m, 0), span) / span) * (W - PAD.left - PAD.right);
  const y = (p) => PAD.top + (high - p) / (high - low) * (H - PAD.top - PAD.bottom);

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg" });
  const label = el("title", {});
  label.textContent = `${instrument} minute closes, ${session}, exchange time (${zone}), `
    + `with ${alerts.length} alert(s)`;
  svg.appendChild(label);
  svg.appendChild(el("line", { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: "axis" }));
  for (const [value, anchor] of [[high, PAD.top + 5], [low, H - PAD.bottom]]) {
    text(svg, { x: PAD.left - 6, y: anchor, class: "tick", "text-anchor": "end" },
      value.toLocaleString(undefined, { maximumFractionDigits: 2 }));
  }
  const last = list[list.length - 1].minute;
  const named = zoneName(zone, new Date(`${session}T12:00:00Z`));
  text(svg, { x: x(0), y: H - 8, class: "tick", "text-anchor": "start" }, list[0].minute);
  text(svg, { x: x(t(last)), y: H - 8, class: "tick", "text-anchor": "end" }, `${last} ${named}`);
  let labelled = x(0);
  for (const [i, run] of runs(list, t).entries()) {
    const at = x(t(run[0].minute));
    if (i > 0 && at - labelled >= LABEL_ROOM && x(t(last)) - at >= 2 * LABEL_ROOM) {
      // Where the line starts again after a break (the afternoon session).
      text(svg, { x: at, y: H - 8, class: "tick", "text-anchor": "middle" }, run[0].minute);
      labelled = at;
    }
    const points = run.map((b) => `${x(t(b.minute)).toFixed(1)},${y(b.close).toFixed(1)}`);
    if (points.length === 1) points.push(points[0]); // a lone minute: a dot (round caps)
    svg.appendChild(el("polyline", { points: points.join(" "), class: "level" }));
  }
  const placed = alerts.slice()
    .sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts))
    .map((alert) => ({ alert, x: x(t(readClock(alert.ts, zone).minute)), y: y(alert.price) }));
  for (const group of groups(placed)) svg.appendChild(marker(group, zone));
  return svg;
}

// One marker for one or more alerts: the dot, a count badge when more than one, every
// message in its title, and their ids in data-alert-ids (the page's tests read them).
function marker(group, zone) {
  const { alerts } = group;
  const ups = alerts.filter((a) => a.change >= 0).length;
  const side = ups === alerts.length ? "up" : ups === 0 ? "down" : "mixed";
  const g = el("g", {
    class: `marker ${side}`,
    "data-alert-ids": alerts.map((a) => a.alert_id).join(" "),
    "data-count": alerts.length,
  });
  const tip = el("title", {});
  const at = readClock(alerts[0].ts, zone);
  tip.textContent = alerts.length === 1 ? alerts[0].message
    : [`${alerts.length} alerts at ${at.minute} ${at.zone}:`, ...alerts.map((a) => `• ${a.message}`)].join("\n");
  g.appendChild(tip);
  const cx = group.x.toFixed(1);
  const cy = group.y.toFixed(1);
  g.appendChild(el("circle", { cx, cy, r: DOT, class: "dot" }));
  if (alerts.length > 1) {
    const bx = (group.x + DOT).toFixed(1);
    const by = (group.y - DOT).toFixed(1);
    g.appendChild(el("circle", { cx: bx, cy: by, r: BADGE, class: "count-bg" }));
    text(g, { x: bx, y: by, class: "count", "text-anchor": "middle", "dominant-baseline": "central" },
      String(alerts.length));
  }
  return g;
}

function text(parent, attributes, content) {
  const node = el("text", attributes);
  node.textContent = content;
  parent.appendChild(node);
  return node;
}

function el(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}
