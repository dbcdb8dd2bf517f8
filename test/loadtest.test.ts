/**
 * The load tester: its guards (loopback only, bounded plans), its parsers
 * (/proc, Prometheus histograms), and one short real run through the CLI —
 * a spawned server, a wrtc actor publishing d9 at 320x240@15 fps through the
 * passthrough stage, a wrtc viewer reading the stamps back — checked through
 * report.json and report.html.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CAPS, UsageError, assertLoopbackUrl, parseOptions } from '../loadtest/options.ts';
import { ProcTreeSampler, descendants, parseStat, type ProcStat } from '../loadtest/proc-stats.ts';
import { histogramDelta, histogramQuantile, parsePrometheus } from '../loadtest/prom.ts';
import { fixture } from './helpers/server.ts';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const base = ['--driving', 'x.mp4', '--out', '/tmp/x'];

test('--url is refused unless it names 127.0.0.1, localhost or ::1', { timeout: 5000 }, () => {
  for (const ok of ['http://127.0.0.1:8080', 'http://localhost:1', 'http://[::1]:9000/', 'https://LOCALHOST:8443']) assert.doesNotThrow(() => assertLoopbackUrl(ok), ok);
  for (const bad of ['http://10.0.0.1:8080', 'http://example.com', 'http://127.0.0.2:80', 'http://0.0.0.0:8080', 'ws://127.0.0.1:1', 'http://user:pw@127.0.0.1:1', 'nonsense']) {
    assert.throws(() => assertLoopbackUrl(bad), UsageError, bad);
  }
  assert.throws(() => parseOptions([...base, '--url', 'http://192.168.1.5:8080']), /loopback/);
});

test('options are bounded: session, size and time caps are enforced before anything starts', { timeout: 5000 }, () => {
  assert.throws(() => parseOptions([...base, '--sessions', String(CAPS.maxSessions + 1)]), UsageError);
  assert.throws(() => parseOptions([...base, '--duration', '590']), /cap is 600 s/);
  assert.throws(() => parseOptions([...base, '--ramp', '--max-sessions', '16', '--step', '60']), /cap is 600 s/);
  assert.throws(() => parseOptions([...base, '--fps', '120']), UsageError);
  assert.throws(() => parseOptions([...base, '--width', '321']), /even/);
  assert.throws(() => parseOptions(['--out', '/tmp/x']), /--driving/);
  assert.throws(() => parseOptions([...base, '--bogus']), UsageError);
  // @ts-expect-error argv must be an array of strings
  assert.throws(() => parseOptions('--sessions 2'));
  const o = parseOptions([...base, '--sessions', '2', '--duration', '20']);
  assert.equal(o.sessions, 2);
  assert.equal(o.durationMs, 20_000);
  assert.equal(o.warmupMs, 3000);
  assert.ok(o.plannedMs <= CAPS.maxTotalMs);
  assert.ok(Object.isFrozen(o));
  assert.equal(o.provider, undefined);
  const gpu = parseOptions([...base, '--provider', 'webgpu', '--batch-max', '8']);
  assert.equal(gpu.provider, 'webgpu');
  assert.equal(gpu.batchMax, 8);
  assert.throws(() => parseOptions([...base, '--provider', 'tpu']), /--provider must be/);
  assert.throws(() => parseOptions([...base, '--batch-max', '65']), UsageError);
  assert.throws(() => parseOptions([...base, '--url', 'http://127.0.0.1:1', '--provider', 'cpu']), /spawned server only/);
});

test('/proc stat lines parse even when the command name holds spaces and parentheses', { timeout: 5000 }, () => {
  const line = '4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 1 2 3 4 150 50 0 0 20 0 3 0 9000 1000000 321 18446744073709551615 0';
  const s = parseStat(line);
  assert.deepEqual(s && { pid: s.pid, comm: s.comm, ppid: s.ppid, cpuTicks: s.cpuTicks, startTicks: s.startTicks, rssPages: s.rssPages }, {
    pid: 4242,
    comm: 'a (weird) name',
    ppid: 17,
    cpuTicks: 200,
    startTicks: 9000,
    rssPages: 321,
  });
  assert.equal(parseStat('garbage'), undefined);
  const p = (pid: number, ppid: number): ProcStat => ({ pid, ppid, comm: 'x', cpuTicks: 0, startTicks: 0, rssPages: 0 });
  const tree = descendants(10, new Map([10, 11, 12, 13, 20].map((pid) => [pid, p(pid, pid === 10 ? 1 : pid === 13 ? 12 : pid === 20 ? 1 : 10)])));
  assert.deepEqual(tree.map((x) => x.pid).sort(), [10, 11, 12, 13]);
});

test('the /proc sampler reports this process with non-zero RSS and finite CPU', { timeout: 10_000 }, async () => {
  const s = await ProcTreeSampler.start({ rootPid: process.pid, origin: performance.now(), intervalMs: 200 });
  const until = performance.now() + 300;
  while (performance.now() < until); // burn a little CPU
  await new Promise((r) => setTimeout(r, 250));
  await s.stop();
  assert.ok(s.samples.length >= 1);
  const last = s.samples.at(-1)!;
  assert.ok(last.rssBytes > 10 * 1024 * 1024, `rss ${last.rssBytes}`);
  assert.ok(Number.isFinite(last.cpuPercent) && last.cpuPercent >= 0);
  assert.ok(s.samples.some((x) => x.cpuPercent > 0), 'no CPU seen while spinning');
});

test('histogram quantiles interpolate inside buckets and flag the +Inf bucket', { timeout: 5000 }, () => {
  const before = parsePrometheus('h_bucket{le="0.01"} 0\nh_bucket{le="0.02"} 0\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n');
  const after = parsePrometheus('# HELP h x\nh_bucket{le="0.01"} 50\nh_bucket{le="0.02"} 100\nh_bucket{le="+Inf"} 100\nh_sum 1.2\nh_count 100\n');
  const h = histogramDelta({ at: 0, samples: before }, { at: 1, samples: after }, 'h')!;
  assert.equal(h.count, 100);
  assert.ok(Math.abs(h.sum - 1.2) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(0.5, h) - 0.01) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(0.75, h) - 0.015) < 1e-9);
  const tail = histogramDelta(undefined, { at: 1, samples: parsePrometheus('h_bucket{le="0.01"} 1\nh_bucket{le="+Inf"} 10\nh_count 10\nh_sum 5\n') }, 'h')!;
  assert.equal(histogramQuantile(0.95, tail), 0.01, 'a quantile in +Inf reports the top finite bound');
  assert.ok(Number.isNaN(histogramQuantile(0.5, { buckets: [], count: 0, sum: 0 })));
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], timeoutMs: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'loadtest/run.ts', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGINT'); // the CLI tears down its server and peers on SIGINT
      reject(new Error(`loadtest CLI still running after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

test('a 6 s passthrough run at 320x240@15 through the CLI writes a sane report.json and an SVG report.html', { timeout: 60_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'reenact-lt-'));
  try {
    const r = await runCli(['--sessions', '1', '--duration', '6', '--warmup', '2', '--driving', fixture('driving/d9.mp4'), '--out', out, '--fps', '15', '--width', '320', '--height', '240', '--stage', 'passthrough'], 55_000);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /glass-to-glass\s+p50 .* p95 /);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    assert.equal(report.status, 'ok');
    assert.equal(report.config.sessions, 1);
    assert.equal(report.sessions.length, 1);
    const s = report.sessions[0];
    assert.ok(s.framesSent >= 80 && s.framesSent <= 95, `frames sent in a 6 s window at 15 fps: ${s.framesSent}`);
    assert.ok(s.framesReceived > 0, 'no frame came back');
    assert.ok(Number.isFinite(s.latency.p95Ms) && s.latency.p95Ms > 0, `p95 ${s.latency.p95Ms}`);
    assert.ok(s.latency.p50Ms <= s.latency.p95Ms && s.latency.p95Ms <= s.latency.p99Ms);
    assert.ok(s.outputFps > 5, `output fps ${s.outputFps}`);
    assert.ok(s.dropRate >= 0 && s.dropRate < 0.5, `drop rate ${s.dropRate}`);
    assert.ok(s.timeToFirstFrameMs > 0 && s.timeToFirstFrameMs < 15_000, `time to first frame ${s.timeToFirstFrameMs}`);
    const o = report.overall;
    assert.ok(o.framesReceived > 0 && Number.isFinite(o.latency.p95Ms));
    assert.ok(o.server?.addedLatency?.frames > 0, 'no server-added latency observations in the window');
    assert.ok(o.server.addedLatency.p95Ms >= 0 && o.server.addedLatency.p95Ms < 1000);
    assert.ok(report.resources.server.samples.length >= 5, 'server /proc samples');
    assert.ok(report.resources.server.samples.some((x: { processes: number }) => x.processes >= 3), 'server tree should include mediasoup worker and reenactor children');
    assert.ok(o.resources.server.rssBytesMax > 50 * 1024 * 1024);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.match(html, /<svg[\s>]/);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'report.html must be self-contained');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
