/**
 * How a bench run is shown: a few lines for a terminal, and a
 * self-contained HTML page with a latency-by-percentile chart.
 *
 * @module
 */

import { type BenchReport, percentileCurve } from "./runner.ts";

/** The report as text lines for a terminal. */
export function formatReport(report: BenchReport): string {
  const { mode, latency, errors } = report;
  const seconds = (report.elapsedMs / 1_000).toFixed(1);
  const what = {
    rr: `${report.connections} connections, ${report.size} B messages`,
    stream: `${report.connections} connections, ${report.size} B writes`,
    connect: `${report.connections} connectors, 1 B each`,
    hold: `${report.connections} connections`,
  }[mode];
  const unit = { rr: "msg", stream: "msg", connect: "conn", hold: "conn" }[mode];
  const lines = [`echod bench ${mode} → ${report.target}: ${what}, ${seconds}s measured`];
  if (mode === "stream") {
    lines.push(
      `  throughput  ${mb(report.bytesPerSecond)} MB/s each way (${
        group(report.verifiedBytes)
      } bytes echoed), ${kib(report.bytesPerSecondPerConnection)} KiB/s per connection`,
    );
  } else if (mode === "hold") {
    lines.push(`  held        ${group(report.operations)} connections open and echoing`);
  } else {
    lines.push(
      `  rate        ${group(Math.round(report.rate))} ${unit}/s (${
        group(report.operations)
      } in all, ${mb(report.bytesPerSecond)} MB/s each way)`,
    );
  }
  if (latency.count > 0) {
    // One unit for every figure, so they read side by side (and against a fault's latency=).
    const ms = report.latencyMs;
    const what = { rr: "round trip", stream: "", connect: "open and echo", hold: "open and echo" };
    lines.push(
      `  latency ms  p50 ${ms.p50.toFixed(3)}  p90 ${ms.p90.toFixed(3)}  p99 ${
        ms.p99.toFixed(3)
      }  p99.9 ${ms.p999.toFixed(3)}  max ${ms.max.toFixed(3)} (${what[mode]}, ${
        group(latency.count)
      } samples)`,
    );
  }
  const cut = cutsLine(report);
  if (cut !== undefined) lines.push(cut);
  const failed = Object.entries(errors).filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kind} ${n}`);
  lines.push(
    `  verified    ${group(report.verifiedBytes)} bytes, ${
      failed.length === 0 ? "no errors" : `errors: ${failed.join(", ")}`
    }`,
  );
  return lines.join("\n");
}

/** The report as a self-contained HTML page (no scripts, no external files). */
export function htmlReport(report: BenchReport): string {
  const curve = report.latency.count > 0 ? percentileCurve(report.histogram) : [];
  const width = 720;
  const height = 300;
  const pad = 50;
  const maxUs = Math.max(1, ...curve.map(([, v]) => v));
  const x = (i: number) => pad + (i * (width - 2 * pad)) / Math.max(1, curve.length - 1);
  const y = (v: number) => height - pad - (v / maxUs) * (height - 2 * pad);
  const points = curve.map(([, v], i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const labels = curve.map(([p, v], i) =>
    `<text x="${x(i).toFixed(1)}" y="${height - pad + 16}" text-anchor="middle">p${p}</text>` +
    `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3"><title>p${p}: ${
      us(v)
    }</title></circle>`
  ).join("");
  const rows = Object.entries({
    mode: report.mode,
    target: report.target,
    connections: report.connections,
    "size (bytes)": report.size,
    "measured (s)": (report.elapsedMs / 1_000).toFixed(1),
    operations: report.operations,
    "rate (/s)": report.rate,
    "verified bytes": report.verifiedBytes,
    "MB/s each way": mb(report.bytesPerSecond),
    "bytes/s per connection": report.bytesPerSecondPerConnection,
    "latency p50 / p90 / p99 / p99.9 / max (ms)": [
      report.latencyMs.p50,
      report.latencyMs.p90,
      report.latencyMs.p99,
      report.latencyMs.p999,
      report.latencyMs.max,
    ].map((ms) => ms.toFixed(3)).join(" / "),
    "cut as expected / at the wrong byte / stalled": report.expect === null
      ? `${report.cuts.stalled} stalled`
      : `${report.cuts.asExpected} / ${report.cuts.wrongByte} / ${report.cuts.stalled}`,
    errors: report.errorCount,
  }).map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(String(v))}</td></tr>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>echod bench ${escape(report.mode)} ${
    escape(report.target)
  }</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}th{text-align:left;padding-right:1em}
svg text{font-size:11px;fill:#555}polyline{fill:none;stroke:#1f6feb;stroke-width:2}circle{fill:#1f6feb}</style>
</head><body>
<h1>echod bench: ${escape(report.mode)} against ${escape(report.target)}</h1>
<table>${rows}</table>
<h2>Latency by percentile</h2>
<svg width="${width}" height="${height}" role="img" aria-label="latency by percentile">
<line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" stroke="#999"/>
<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${height - pad}" stroke="#999"/>
<text x="${pad - 6}" y="${pad}" text-anchor="end">${us(maxUs)}</text>
<text x="${pad - 6}" y="${height - pad}" text-anchor="end">0</text>
<polyline points="${points}"/>${labels}
</svg>
<p>Every echoed byte was compared with what was sent; latency from an HDR histogram (3 significant digits).</p>
</body></html>
`;
}

function cutsLine(report: BenchReport): string | undefined {
  const { cuts, expect } = report;
  if (expect === null && cuts.stalled === 0) return undefined;
  const parts: string[] = [];
  if (expect !== null) {
    const verb = { close: "closed", reset: "reset", stall: "stalled" }[expect.cut];
    const where = expect.bytes === null ? "" : ` at ${group(expect.bytes)} bytes`;
    parts.push(`${group(cuts.asExpected)} ${verb} as expected${where}`);
    parts.push(`${group(cuts.wrongByte)} at the wrong byte`);
  }
  if (expect?.cut !== "stall") {
    parts.push(`${group(cuts.stalled)} stalled`);
  }
  if (cuts.stalled > 0) {
    parts.push(`${group(cuts.stalledWhileWriting)} of the stalled with a write blocked`);
  }
  const b = cuts.bytesPerConnection;
  const bytes = b.count === 0
    ? ""
    : `; bytes per connection min ${group(b.min)} mean ${group(Math.round(b.mean))} max ${
      group(b.max)
    }`;
  return `  cuts        ${parts.join(", ")}${bytes}`;
}

function kib(bytesPerSecond: number): string {
  return (bytesPerSecond / 1_024).toFixed(1);
}

function us(micros: number): string {
  if (micros >= 1_000_000) return `${(micros / 1_000_000).toFixed(2)} s`;
  if (micros >= 1_000) return `${(micros / 1_000).toFixed(2)} ms`;
  return `${micros} µs`;
}

function mb(bytesPerSecond: number): string {
  return (bytesPerSecond / 1_000_000).toFixed(1);
}

function group(n: number): string {
  return n.toLocaleString("en-US");
}

function escape(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!,
  );
}
