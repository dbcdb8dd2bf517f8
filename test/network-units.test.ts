/**
 * The parts of the network-fault machinery that decide things without a
 * network: the impairment pipe, the bitrate ladder that follows the slowest
 * viewer, and the recovery measures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipe, type Impairment } from '../loadtest/impair.ts';
import { prng } from '../loadtest/prng.ts';
import { DOWN_SHARE, MAX_UP_DWELL_MS, MIN_FOLLOW_BPS, SETTLE_MS, UP_DWELL_MS, UP_MARGIN, bitrateLadder, followStep, initialFollowState } from '../server/src/sfu/viewer-bitrate.ts';
import { latencyBackFrom, steadyFrom } from '../loadtest/fault-outcome.ts';
import { internalAddress } from '../server/src/sfu/peer.ts';

function pipe(imp: Impairment, seed = 3): { p: Pipe; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const p = new Pipe('up', () => imp, prng(seed));
  return { p, sent };
}

test('the impairment pipe drops about the share asked for, repeatably for a seed', () => {
  const counts: number[] = [];
  for (let run = 0; run < 2; run++) {
    const { p, sent } = pipe({ loss: 0.05 });
    for (let i = 0; i < 10_000; i++) p.push(Buffer.alloc(100), (b) => sent.push(b), 0);
    counts.push(sent.length);
    assert.equal(p.counts.lost + p.counts.forwarded, 10_000);
    p.close();
  }
  assert.equal(counts[0], counts[1], 'the same seed gives the same drops');
  const lossShare = 1 - counts[0]! / 10_000;
  assert.ok(lossShare > 0.04 && lossShare < 0.06, `dropped ${lossShare}`);
});

test('a blackout drops everything; a direction-limited impairment leaves the other direction alone', () => {
  const { p, sent } = pipe({ blackout: true });
  for (let i = 0; i < 50; i++) p.push(Buffer.alloc(10), (b) => sent.push(b), 0);
  assert.equal(sent.length, 0);
  assert.equal(p.counts.blackedOut, 50);
  const other = pipe({ blackout: true, only: 'down' });
  for (let i = 0; i < 50; i++) other.p.push(Buffer.alloc(10), (b) => other.sent.push(b), 0);
  assert.equal(other.sent.length, 50, 'an up pipe ignores a down-only blackout');
});

test('the cap serialises packets at its rate and tail-drops beyond its queue', () => {
  // 300 kbit/s: a 1250-byte packet takes 33.3 ms on the wire; a 100 ms queue holds three more.
  const { p } = pipe({ rateBps: 300_000, queueMs: 100 });
  for (let i = 0; i < 10; i++) p.push(Buffer.alloc(1250), () => undefined, 0);
  assert.equal(p.counts.forwarded, 4, 'the first packet plus three within the 100 ms queue');
  assert.equal(p.counts.queueDropped, 6);
  assert.equal(p.counts.delayed, 4);
  // Once the wire is free again, packets pass.
  p.push(Buffer.alloc(1250), () => undefined, 1000);
  assert.equal(p.counts.forwarded, 5);
  p.close();
});

test('delayed packets arrive after their delay and jitter, and none after close', async () => {
  const { p, sent } = pipe({ delayMs: 20, jitterMs: 20 });
  const t0 = performance.now();
  const at: number[] = [];
  for (let i = 0; i < 20; i++) p.push(Buffer.from([i]), () => at.push(performance.now() - t0));
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(at.length, 20);
  assert.ok(Math.min(...at) >= 19, `earliest ${Math.min(...at)} ms`);
  assert.ok(Math.max(...at) < 70, `latest ${Math.max(...at)} ms`);
  p.push(Buffer.from([1]), (b) => sent.push(b));
  p.close();
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(sent.length, 0, 'close cancels what is in flight');
});

test('the bitrate ladder halves from the configured bitrate down to the floor', () => {
  assert.deepEqual(bitrateLadder(1_500_000), [1_500_000, 750_000, 375_000, 187_500, MIN_FOLLOW_BPS]);
  assert.deepEqual(bitrateLadder(100_000), [100_000], 'a configured bitrate under the floor is the only rung');
});

test('following the slowest viewer: down on a second low reading to what the estimate carries, up after a dwell, with a longer dwell after a failed probe', () => {
  const rungs = bitrateLadder(1_500_000);
  let s = initialFollowState(0);
  // A viewer behind 300 kbit/s: its estimate 280 k carries 187.5 k (280 × 0.85 = 238 k).
  s = followStep(s, [2_000_000, 280_000], SETTLE_MS, rungs);
  assert.equal(s.rung, 0, 'one low reading is not enough');
  s = followStep(s, [2_000_000, 280_000], SETTLE_MS + 1000, rungs);
  assert.equal(rungs[s.rung], 187_500);
  // Right after a change the estimate is left to settle.
  assert.equal(followStep(followStep(s, [50_000], SETTLE_MS + 1500, rungs), [50_000], SETTLE_MS + 2000, rungs).rung, s.rung);
  // The estimate holds 1.25× the rung: up after the dwell, not before.
  let t = 2 * SETTLE_MS + 1001;
  const clear = [187_500 * UP_MARGIN + 1];
  s = followStep(s, clear, t, rungs);
  assert.equal(rungs[s.rung], 187_500);
  s = followStep(s, clear, t + UP_DWELL_MS, rungs);
  assert.equal(rungs[s.rung], 375_000, 'one rung up after the dwell');
  // The probe fails (the estimate falls under the new rung): back down, and the next dwell doubles.
  t += UP_DWELL_MS + SETTLE_MS;
  s = followStep(s, [375_000 * DOWN_SHARE - 1], t, rungs);
  s = followStep(s, [375_000 * DOWN_SHARE - 1], t + 1000, rungs);
  assert.equal(rungs[s.rung], 187_500);
  assert.equal(s.upDwellMs, 2 * UP_DWELL_MS);
  // An estimate that runs well ahead lifts several rungs at once.
  t += 1000 + SETTLE_MS;
  s = followStep(s, [1_600_000 * UP_MARGIN], t, rungs);
  s = followStep(s, [1_600_000 * UP_MARGIN], t + s.upDwellMs, rungs);
  assert.equal(s.rung, 0, 'straight back to the configured bitrate');
  // The dwell never grows past its ceiling, and with no viewer the video goes back to full.
  assert.ok(s.upDwellMs <= MAX_UP_DWELL_MS);
  const low = followStep(followStep(initialFollowState(0), [100_000], SETTLE_MS, rungs), [100_000], SETTLE_MS + 1000, rungs);
  assert.equal(rungs[low.rung], MIN_FOLLOW_BPS, 'never under the floor');
  assert.equal(followStep(low, [], SETTLE_MS + 1, rungs).rung, 0);
});

test('recovery measures: a steady stretch needs the frame rate and no long gap; latency needs a whole window near baseline', () => {
  const frames = [...Array.from({ length: 30 }, (_, i) => i * 33), ...Array.from({ length: 120 }, (_, i) => 2000 + i * 33)];
  // Fault ended at 1000: frames stop at ~960 and resume at 2000.
  const steady = steadyFrom(frames, 1000, 30)!;
  assert.ok(steady >= 1750 && steady <= 2000, `steady from ${steady}`);
  assert.equal(steadyFrom(frames, 1000, 60), null, 'half the baseline rate is never steady');
  const lat = frames.map((at) => ({ at, ms: at < 3000 ? 900 : 120 }));
  const back = latencyBackFrom(lat, 1000, 200)!;
  assert.ok(back >= 2960 && back <= 3000, `latency back from ${back}`);
  assert.equal(latencyBackFrom(lat, 1000, 100), null);
});

test('a co-located reenactor is given the listen address, or loopback for a wildcard one', () => {
  assert.equal(internalAddress('0.0.0.0'), '127.0.0.1');
  assert.equal(internalAddress('::'), '::1');
  assert.equal(internalAddress('127.0.0.1'), undefined);
});

test('the stall watch: a keyframe request after a short stall, a new receiver only while the SFU still receives the camera, and at once after a freeze', async () => {
  const { StallWatch, STALL_MS, REQUEST_GAP_MS, RESUBSCRIBE_AFTER_MS, RESUBSCRIBE_GAP_MS, SLOW_AFTER, SLOW_GAP_MS, FROZEN_MS } = await import('../server/src/reenactor/stall-watch.ts');
  const tick = 200;
  const run = (w: InstanceType<typeof StallWatch>, from: number, to: number): { at: number; action: string }[] => {
    const out: { at: number; action: string }[] = [];
    for (let t = from; t <= to; t += tick) {
      const a = w.due(t);
      if (a) out.push({ at: t, action: a });
    }
    return out;
  };
  // Nothing before the first frame (a session that has not started is not stalled).
  const idle = new StallWatch();
  assert.deepEqual(run(idle, 0, 5000), []);
  // Frames until 1000, then none; the SFU says the camera is not arriving (the actor's link is down).
  const w = new StallWatch();
  for (let t = 0; t <= 1000; t += 33) w.frame(t);
  const down = run(w, 1000, 1000 + 20_000);
  assert.equal(down[0]?.action, 'keyframe');
  assert.ok(down[0].at - 990 >= STALL_MS && down[0].at - 990 < STALL_MS + tick);
  assert.ok(down.every((d) => d.action === 'keyframe'), 'no new receiver while the SFU has nothing to give');
  const gaps = down.slice(1).map((d, i) => d.at - down[i]!.at);
  assert.ok(gaps.slice(0, SLOW_AFTER - 1).every((g) => g >= REQUEST_GAP_MS && g < REQUEST_GAP_MS + tick), `early gaps ${gaps.join(' ')}`);
  assert.ok(gaps.slice(SLOW_AFTER).every((g) => g >= SLOW_GAP_MS), `later gaps ${gaps.join(' ')}`);
  // The same stall while the SFU receives the camera: a new receiver, not more than once per gap.
  const v = new StallWatch();
  for (let t = 0; t <= 1000; t += 33) v.frame(t);
  const actions: { at: number; action: string }[] = [];
  for (let t = 1000; t <= 12_000; t += tick) {
    const a = v.due(t);
    if (a === 'keyframe') v.answered(true);
    if (a) actions.push({ at: t, action: a });
  }
  const resub = actions.filter((a) => a.action === 'resubscribe');
  assert.ok(resub.length >= 2, 'renewed, and renewed again when that did not help');
  assert.ok(resub[0]!.at - 990 >= RESUBSCRIBE_AFTER_MS && resub[0]!.at - 990 < RESUBSCRIBE_AFTER_MS + 2 * tick, `first renewal at ${resub[0]!.at}`);
  assert.ok(resub[1]!.at - resub[0]!.at >= RESUBSCRIBE_GAP_MS);
  // A freeze: the timer fires late; the watch renews at once, even with frames just before.
  const f = new StallWatch();
  f.frame(0);
  assert.equal(f.due(100), null);
  f.frame(150);
  assert.equal(f.due(100 + FROZEN_MS + 1), 'frozen');
  f.frame(100 + FROZEN_MS + 50);
  assert.equal(f.due(100 + FROZEN_MS + 1 + tick), null, 'once, and frames flowing again need nothing');
});
