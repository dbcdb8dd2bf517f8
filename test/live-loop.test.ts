/**
 * End-to-end with real parts: a wrtc actor publishes real footage (d3 at
 * 640x480, 30 fps, 10 s) into a real mediasoup worker; the reenactor child
 * (passthrough stage, measurement mode) republishes it; a wrtc viewer reads
 * the frame stamps back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReenactServer } from '../server/src/server.ts';
import { FootageActor, StampViewer, decodeClip, latencies, percentile, type DecodedClip } from '../loadtest/peers.ts';
import { childMemory } from '../loadtest/soak.ts';
import { fixture, settleWrtc, startServer } from './helpers/server.ts';

let server: ReenactServer;
let clip: DecodedClip;

before(async () => {
  server = await startServer({ measurement: true });
  clip = await decodeClip(fixture('driving/d3.mp4'), 640, 480, 30, 354);
});

after(async () => {
  await server.close();
  await settleWrtc();
});

test('passthrough loop delivers ≥90% of 10 s of 480p30 footage in order, and reports latency', { timeout: 60_000 }, async () => {
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('e2e', 'actor'), clip, durationMs: 10_000 });
  const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign('e2e', 'viewer') });
  try {
    await viewer.firstFrame(15_000);
    await actor.finished();
    await new Promise((r) => setTimeout(r, 1000)); // let the last frames drain
    const lat = latencies(actor, viewer);
    assert.ok(lat.length > 0, 'no stamped frame came back');
    const firstId = Math.min(...lat.map((l) => l.id));
    const expected = actor.framesSent - firstId + 1;
    const ratio = lat.length / expected;
    const ids = lat.map((l) => l.id);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `stamp ${ids[i]} came after ${ids[i - 1]}`);
    const ms = lat.map((l) => l.ms);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const metric = (re: RegExp): number => Number(re.exec(metrics)?.[1] ?? NaN);
    const report = {
      reenactor: {
        framesIn: metric(/^reenact_frames_in_total (\S+)/m),
        framesOut: metric(/^reenact_frames_out_total (\S+)/m),
        superseded: metric(/^reenact_frames_dropped_total\{reason="superseded"\} (\S+)/m),
      },
      framesSent: actor.framesSent,
      framesBack: lat.length,
      deliveredRatio: ratio,
      firstIdBack: firstId,
      latencyMs: { p50: percentile(ms, 50), p95: percentile(ms, 95), p99: percentile(ms, 99), max: Math.max(...ms) },
    };
    console.log('passthrough glass-to-glass', JSON.stringify(report));
    await mkdir(new URL('./artifacts/', import.meta.url), { recursive: true });
    await writeFile(new URL('./artifacts/passthrough-latency.json', import.meta.url), JSON.stringify(report, null, 2));
    assert.ok(ratio >= 0.9, `only ${(ratio * 100).toFixed(1)}% of frames arrived`);
    // The child's heartbeat splits its memory (V8 heap, external buffers) for the soak's diagnosis.
    const mem = childMemory(metrics);
    // Summed over the reenactor children, as childMemory sums their split.
    const rss = [...metrics.matchAll(/^reenact_child_rss_bytes\{process="reenactor-\d+"\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    assert.ok((mem.get('heap_used') ?? 0) > 0, `no heap_used in ${JSON.stringify([...mem])}`);
    assert.ok(mem.get('heap_total')! >= mem.get('heap_used')!, JSON.stringify([...mem]));
    assert.ok(mem.get('external')! >= mem.get('array_buffers')!, JSON.stringify([...mem]));
    assert.ok(rss > mem.get('heap_used')!, `child RSS ${rss} below its heap ${mem.get('heap_used')}`);
    // The soak's native share is RSS less heap and external from the same heartbeat.
    assert.equal(mem.get('rss'), rss, `the split's RSS ${mem.get('rss')} is not the child's gauge ${rss}`);
    assert.ok(Number.isFinite(report.latencyMs.p95));
  } finally {
    viewer.close();
    actor.stop();
  }
});

test('over HTTPS with a self-signed certificate the reenactor joins its own server and frames flow', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'reenact-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=reenact.example'], { stdio: 'ignore' });
  const tls = await startServer({ measurement: true, tlsCert: cert, tlsKey: key });
  assert.match(tls.url, /^https:/);
  const small = await decodeClip(fixture('driving/d3.mp4'), 320, 240, 15, 60);
  const actor = await FootageActor.start({ url: tls.url, token: tls.tokens.sign('tls', 'actor'), clip: small, durationMs: 20_000 });
  const viewer = await StampViewer.start({ url: tls.url, token: tls.tokens.sign('tls', 'viewer') });
  try {
    await viewer.firstFrame(20_000);
    assert.ok(viewer.received.length > 0);
  } finally {
    viewer.close();
    actor.stop();
    await tls.close();
  }
});
