/**
 * report.html: one self-contained page (inline SVG and CSS, no scripts, no
 * external resources) with the summary table, latency over time, the latency
 * distribution, CPU and RSS over time, and the ramp curve when there is one.
 */
import type { Aggregate, Report } from './report.ts';
import { PALETTE, chart, decimate, esc, minMax, niceStep, type Point, type Series } from './svg.ts';
import type { ProcSample } from './proc-stats.ts';

const n = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));
const color = (i: number): string => PALETTE[i % PALETTE.length]!;

function aggregateRow(label: string, a: Aggregate): string {
  const s = a.server?.addedLatency;
  return `<tr><th>${esc(label)}</th><td>${a.sessions}</td><td>${a.framesSent}</td><td>${a.framesReceived}</td><td>${n(a.latency.p50Ms)}</td><td>${n(a.latency.p95Ms)}</td><td>${n(a.latency.p99Ms)}</td><td>${n(a.latency.maxMs)}</td><td>${n(a.outputFpsMeanPerSession)}</td><td>${n(a.dropRate * 100)}</td><td>${n(a.timeToFirstFrameMs.maxMs, 0)}</td><td>${s ? `${n(s.p50Ms, 2)} / ${s.p95IsLowerBound ? '&gt;' : ''}${n(s.p95Ms, 2)} / ${n(s.meanMs, 2)}` : '–'}</td><td>${n(a.resources.server?.cpuPercentMean, 0)} / ${n(a.resources.server?.cpuPercentMax, 0)}</td><td>${a.resources.server?.rssBytesMax ? n(a.resources.server.rssBytesMax / 1048576, 0) : '–'}</td><td>${n(a.resources.client.cpuPercentMean, 0)}</td></tr>`;
}

const AGG_HEAD =
  '<tr><th></th><th>sessions</th><th>frames sent</th><th>frames back</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>output fps / session</th><th>drop %</th><th>first frame ms (max)</th><th>server-added p50 / p95 / mean ms</th><th>server CPU % mean / max</th><th>server RSS max MB</th><th>load-test CPU % mean</th></tr>';

function sessionTable(r: Report): string {
  const rows = r.sessions.map(
    (s) =>
      `<tr><th style="color:${color(s.index)}">${s.index + 1}</th><td>${esc(s.room)}</td><td>${s.framesSent}</td><td>${s.framesReceived}</td><td>${s.framesUnstamped}</td><td>${n(s.latency.p50Ms)}</td><td>${n(s.latency.p95Ms)}</td><td>${n(s.latency.p99Ms)}</td><td>${n(s.latency.maxMs)}</td><td>${n(s.outputFps)}</td><td>${n(s.dropRate * 100)}</td><td>${n(s.timeToFirstFrameMs, 0)}</td><td>${n(s.window.fromMs / 1000)}–${n(s.window.toMs / 1000)}</td></tr>`,
  );
  return `<table><tr><th>#</th><th>room</th><th>frames sent</th><th>frames back</th><th>unstamped</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>output fps</th><th>drop %</th><th>first frame ms</th><th>window s</th></tr>${rows.join('')}</table>`;
}

function latencyOverTime(r: Report): string {
  const series: Series[] = r.series.map((s) => ({ name: `session ${s.session + 1}`, color: color(s.session), points: decimate(s.points.map(([t, v]) => [t / 1000, v] as Point)) }));
  const warm = r.sessions.map((s) => ({ from: s.publishedAtMs / 1000, to: s.window.fromMs / 1000, label: '' }));
  const vBands = r.ramp ? r.ramp.steps.map((st) => ({ from: st.window.fromMs / 1000, to: st.window.toMs / 1000, label: `${st.sessions}` })) : warm.slice(0, 1).map((w) => ({ ...w, label: 'warm-up' }));
  return chart({
    title: 'Glass-to-glass latency per frame (by send time)',
    xLabel: 'time since first session start (s)',
    yLabel: 'latency (ms)',
    series,
    vBands,
    hLines: r.ramp ? [{ y: r.ramp.p95LimitMs, label: `p95 limit ${r.ramp.p95LimitMs} ms`, color: '#c00' }] : [],
    height: Math.max(300, 70 + 14 * series.length),
  });
}

/** Latencies of the frames sent inside each session's measurement window (the ones the tables use). */
function windowed(r: Report): { session: number; values: number[] }[] {
  return r.series.map((s) => {
    const w = r.sessions.find((x) => x.index === s.session)?.window;
    return { session: s.session, values: s.points.filter(([t]) => !w || (t >= w.fromMs && t < w.toMs)).map((p) => p[1]) };
  });
}

function distribution(r: Report): string {
  const per = windowed(r);
  const all: number[] = per.flatMap((s) => s.values);
  if (all.length === 0) return '<p>No frames came back: no distribution.</p>';
  const [lo, hi] = minMax(all);
  const width = niceStep(hi - lo, 40);
  const start = Math.floor(lo / width) * width;
  const counts = new Map<number, number>();
  for (const v of all) {
    const b = Math.floor((v - start) / width);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  const bars = [...counts.entries()].map(([b, c]) => ({ x0: start + b * width, x1: start + (b + 1) * width, y: (c / all.length) * 100, color: '#4a7ab5' }));
  const hist = chart({ title: `Latency histogram, all sessions, after warm-up (${all.length} frames, bins of ${width} ms)`, xLabel: 'glass-to-glass latency (ms)', yLabel: '% of frames', bars });
  const cdf = (values: number[]): Point[] => {
    const s = [...values].sort((a, b) => a - b);
    return decimate(s.map((v, i) => [v, ((i + 1) / s.length) * 100] as Point), 600);
  };
  const series: Series[] = [{ name: 'all sessions', color: '#000', points: cdf(all) }];
  if (per.length > 1) for (const s of per) series.push({ name: `session ${s.session + 1}`, color: color(s.session), points: cdf(s.values) });
  const p = r.overall?.latency;
  const cdfChart = chart({
    title: 'Latency CDF, after warm-up',
    xLabel: 'glass-to-glass latency (ms)',
    yLabel: '% of frames ≤ x',
    series,
    yMax: 100,
    vLines: p ? [{ x: p.p50Ms, label: 'p50' }, { x: p.p95Ms, label: 'p95' }] : [],
    height: Math.max(300, 70 + 14 * series.length),
  });
  return hist + cdfChart;
}

function resourceSeries(samples: readonly ProcSample[], value: (s: ProcSample) => number, byKind: (k: { cpuPercent: number; rssBytes: number }) => number, prefix: string): Series[] {
  const kinds = [...new Set(samples.flatMap((s) => Object.keys(s.byKind)))].sort();
  const out: Series[] = [{ name: `${prefix} total`, color: '#000', points: samples.map((s) => [s.tMs / 1000, value(s)] as Point) }];
  kinds.forEach((k, i) => out.push({ name: `${prefix} ${k}`, color: color(i + 1), points: samples.map((s) => [s.tMs / 1000, s.byKind[k] ? byKind(s.byKind[k]) : 0] as Point) }));
  return out;
}

function resources(r: Report): string {
  const srv = r.resources.server.samples;
  const cli = r.resources.client.samples;
  const cpu = [...resourceSeries(srv, (s) => s.cpuPercent, (k) => k.cpuPercent, 'server'), { name: 'load-test process', color: '#999', points: cli.map((s) => [s.tMs / 1000, s.cpuPercent] as Point) }];
  const rss = resourceSeries(srv, (s) => s.rssBytes / 1048576, (k) => k.rssBytes / 1048576, 'server');
  const note = r.resources.server.note ? `<p class="note">${esc(r.resources.server.note)}</p>` : '';
  return (
    note +
    chart({ title: 'CPU over time (% of one core, 1 s samples from /proc)', xLabel: 'time since first session start (s)', yLabel: 'CPU (%)', series: cpu, height: Math.max(300, 70 + 14 * cpu.length) }) +
    (srv.length ? chart({ title: 'Resident memory over time (server process and all descendants)', xLabel: 'time since first session start (s)', yLabel: 'RSS (MB)', series: rss, height: Math.max(300, 70 + 14 * rss.length) }) : '')
  );
}

function ramp(r: Report): string {
  if (!r.ramp) return '';
  const rp = r.ramp;
  const p95: Point[] = rp.steps.map((s) => [s.sessions, Number.isFinite(s.aggregate.latency.p95Ms) ? s.aggregate.latency.p95Ms : rp.p95LimitMs * 1.5]);
  const p50: Point[] = rp.steps.map((s) => [s.sessions, s.aggregate.latency.p50Ms]);
  const svg = chart({
    title: `Ramp: latency vs concurrent sessions — knee ${rp.knee ?? 'not reached'}`,
    xLabel: 'concurrent sessions',
    yLabel: 'glass-to-glass latency (ms)',
    series: [
      { name: 'p95', color: '#c00', points: p95 },
      { name: 'p50', color: '#1f77b4', points: p50 },
    ],
    xMin: 0,
    xMax: Math.max(rp.maxSessions, 1) + 0.5,
    hLines: [{ y: rp.p95LimitMs, label: `limit ${rp.p95LimitMs} ms`, color: '#c00' }],
    vLines: rp.knee !== null ? [{ x: rp.knee, label: `knee = ${rp.knee}`, color: '#c00' }] : [],
  });
  const rows = rp.steps.map((s) => aggregateRow(`${s.sessions}${s.exceeded ? ' ✗' : ''}`, s.aggregate)).join('');
  return `<h2>Ramp</h2><p>Knee: <b>${rp.knee ?? `none up to ${rp.maxSessions} sessions`}</b> (${esc(rp.stopReason)}); sustained within ${rp.p95LimitMs} ms p95: <b>${rp.maxSustainedSessions}</b> session(s). Each step measured ${rp.stepWindowMs / 1000} s after the new session's warm-up.</p>${svg}<table>${AGG_HEAD}${rows}</table>`;
}

export function renderHtml(r: Report): string {
  const cfg = Object.entries(r.config)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`)
    .join('');
  const overall = r.overall ? `<table>${AGG_HEAD}${aggregateRow(r.ramp ? 'whole run' : 'overall', r.overall)}</table>` : '<p>No overall numbers.</p>';
  const notes = r.notes.map((x) => `<li>${esc(x)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reenact load test ${esc(r.startedAt)}</title>
<style>
body{font:14px/1.4 sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f4f4f4}
.status-ok{color:#070}.status-failed,.status-aborted{color:#b00}.note{color:#555}svg{display:block;margin:10px 0}
</style></head><body>
<h1>Reenact load test — <span class="status-${r.status}">${r.status}</span></h1>
<p>${esc(r.startedAt)} → ${esc(r.finishedAt)} (${(r.wallMs / 1000).toFixed(1)} s wall). Node ${esc(r.environment.node)}, ${r.environment.cpus} CPU(s), load average ${r.environment.loadavg1mStart.toFixed(2)} → ${r.environment.loadavg1mEnd.toFixed(2)}.</p>
${r.error ? `<p class="status-failed">Error: ${esc(r.error)}</p>` : ''}
${notes ? `<ul class="note">${notes}</ul>` : ''}
<h2>Summary</h2>${overall}
${ramp(r)}
<h2>Sessions</h2>${sessionTable(r)}
<h2>Latency over time</h2>${latencyOverTime(r)}
<h2>Latency distribution</h2>${distribution(r)}
<h2>Server resources</h2>${resources(r)}
<h2>Configuration</h2><table>${cfg}</table>
<p class="note">Definitions: docs/loadtest.md. Glass-to-glass = viewer decode time − actor encoder hand-off time, per stamped frame, one clock. Server-added = reenact_server_added_latency_seconds deltas over the window, quantiles interpolated in buckets.</p>
</body></html>
`;
}
