/**
 * The soak's short version (`npm run soak` runs 4 sessions for 30 minutes; docs/reliability.md
 * has that run's figures): 2 passthrough sessions through real peers for one minute in 15 s
 * windows, against a spawned server. Every window has both sessions live and frames flowing, the
 * server's open file descriptors hold steady, and the report and plots are written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { soak } from '../loadtest/soak.ts';
import { settleWrtc, fixture } from './helpers/server.ts';

test('soak, short: 2 sessions × 1 minute; every window live, fds steady, report and plots written', { timeout: 240_000 }, async () => {
  const out = await mkdtemp(join(tmpdir(), 'reenact-soak-'));
  const r = await soak({ sessions: 2, minutes: 1, warmupMinutes: 0.25, windowS: 15, stage: 'passthrough', driving: fixture('driving/d9.mp4'), fps: 15, out, signal: new AbortController().signal });
  await settleWrtc();
  console.log('soak', JSON.stringify(r.growth), JSON.stringify(r.windows.map((w) => [w.atMin, w.p95Ms, w.outputFps, w.dropRate, w.rssMb.total, w.fds])));
  assert.equal(r.windows.length, 4);
  for (const w of r.windows) {
    assert.equal(w.sessionsLive, 2, `${w.atMin} min: a session ended`);
    assert.ok(w.outputFps >= 20, `${w.atMin} min: ${w.outputFps} fps out of 2 × 15`);
    assert.ok(w.dropRate < 0.1, `${w.atMin} min: ${(w.dropRate * 100).toFixed(1)} % dropped`);
    assert.ok(w.rssMb.main > 0 && w.rssMb.mediasoup > 0 && w.fds > 0, JSON.stringify(w));
  }
  assert.ok(Math.abs(r.growth.fdsDelta) <= 20, `open fds moved by ${r.growth.fdsDelta} within a minute`);
  for (const f of ['soak.json', 'soak.md', 'soak-rss.svg', 'soak-latency.svg', 'soak-frames.svg', 'soak-fds.svg']) assert.ok(existsSync(join(out, f)), `${f} missing`);
});
