// Charts of amounts over days with uPlot (served from /vendor, no build). The canvas is for the
// eye; the exact integer amounts stay in the DOM (a table with data-day / data-amount per day),
// for screen readers and tests, and for anyone who wants the number rather than the bar's height.
import uPlot from "/vendor/uPlot.esm.js";
import { formatAmount, h } from "/static/api.js";

const DAY = 86400;

/** Days as the API gives them ({day: "YYYY-MM-DD", amount: int base units}) as a bar chart in
 *  ``box``; ``label`` names the series (e.g. "credited"). Returns a function that redraws it. */
export function dailyBars(box, days, { label = "amount", decimals = 6, unit = "ocUSD" } = {}) {
  const xs = days.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
  // uPlot plots floats; only the bar heights use them. The text is from the exact integers.
  const ys = days.map((d) => Number(d.amount) / 10 ** decimals);
  const plot = h("div", { class: "chart-plot" });
  const table = h("table", { class: "visually-hidden daily-values" },
    h("caption", { text: `${label} per day (UTC), ${unit}` }),
    h("tbody", {}, days.map((d) => h("tr", { "data-day": d.day, "data-amount": String(d.amount) },
      h("th", { scope: "row", text: d.day }), h("td", { text: formatAmount(d.amount, decimals) })))));
  box.replaceChildren(plot, table);
  const size = () => ({ width: Math.max(240, Math.floor(box.clientWidth || 600)), height: 220 });
  const opts = {
    ...size(),
    // Days are UTC days (the API's), whatever the browser's time zone.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: true, range: (u, min, max) => [min - DAY / 2, max + DAY / 2] }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    axes: [
      { stroke: "#6b6b6b", grid: { show: false }, ticks: { stroke: "#e5e5e5" }, values: "{MMM} {D}" },
      { stroke: "#6b6b6b", grid: { stroke: "#eeeeee" }, ticks: { show: false }, size: 70,
        values: (u, splits) => splits.map((v) => trimZeros(v.toFixed(decimals))) },
    ],
    series: [
      {},
      { label, stroke: "#0c7f63", fill: "#10a37f", width: 0, points: { show: false },
        paths: uPlot.paths.bars({ size: [0.7, 28], align: 0 }) },
    ],
  };
  const chart = new uPlot(opts, [xs, ys], plot);
  const redraw = () => chart.setSize(size());
  if (typeof ResizeObserver === "function") new ResizeObserver(redraw).observe(box);
  return redraw;
}

function trimZeros(s) {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}
