'use strict';
// Small statistics and formatting helpers shared by the benchmark scripts.

/** The q-quantile (0..1) of a numeric array (nearest rank on a sorted copy). */
function quantile(values, q) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i];
}

/** The median (the mean of the two middle values for an even count). */
function median(values) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
const best = (v) => (v.length ? Math.min(...v) : NaN);

/** A number with thousands separators and `digits` decimals (fewer for big numbers). */
function fmt(n, digits) {
  if (!Number.isFinite(n)) return '–';
  const d = digits !== undefined ? digits : n >= 100 ? 0 : n >= 10 ? 1 : 2;
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** A ratio as `1.23×`. */
const ratio = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–');

/** Renders rows (arrays of cells) as an aligned plain-text table; numeric-looking cells right-aligned. */
function textTable(header, rows) {
  const all = [header, ...rows].map((r) => r.map((c) => String(c)));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] || '').length)));
  const numeric = (s) => /^[-–+]?[\d,.]+\s*(×|%|ms|µs|ns|k|MB|B)?$|^–$/.test(s);
  const line = (r) => r.map((c, i) => (numeric(c) && i > 0 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

/** Renders rows as a GitHub markdown table; numeric columns right-aligned. */
function mdTable(header, rows) {
  const esc = (c) => String(c).replace(/\|/g, '\\|');
  const numericCol = header.map((_, i) => i > 0 && rows.length > 0 && rows.every((r) => /^[-–+]?[\d,.]+\s*(×|%|ms|µs|ns|k|MB|B)?$|^–$/.test(String(r[i]))));
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `|${header.map((_, i) => (numericCol[i] ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

module.exports = { quantile, median, best, fmt, ratio, textTable, mdTable };
