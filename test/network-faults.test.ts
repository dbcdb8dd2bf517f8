/**
 * Network faults on the media path, through real parts: a wrtc actor and a
 * wrtc viewer reach a real mediasoup worker through an impairing UDP relay
 * (loadtest/impair.ts: this kernel has no sch_netem, see there), the
 * reenactor renders on the clean path behind it. Each fault is applied to
 * both directions of both clients, then lifted; the session must recover by
 * itself (NACK, PLI, keyframes, bandwidth estimation) and the RTP metrics
 * must show what happened.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ReenactServer } from '../server/src/server.ts';
import { FootageActor, StampViewer, decodeClip, latencies, percentile, type DecodedClip } from '../loadtest/peers.ts';
import { ImpairmentRelay, type Impairment } from '../loadtest/impair.ts';
import { fixture, settleWrtc, startServer, waitFor } from './helpers/server.ts';
import { LATENCY_SLACK_MS, faultOutcome, latencyBackFrom, metricSum, scrapeValues, type FaultOutcome } from '../loadtest/fault-outcome.ts';

const RELAY_IP = '127.0.0.2';
const PORTS = { min: 46_000, max: 46_049 };

let server: ReenactServer;
let relay: ImpairmentRelay;
let clip: DecodedClip;

before(async () => {
  relay = await ImpairmentRelay.start({ relayIp: RELAY_IP, targetIp: '127.0.0.1', minPort: PORTS.min, maxPort: PORTS.max, seed: 7 });
  server = await startServer({ stage: 'reenact', measurement: true, announcedIp: RELAY_IP, rtcMinPort: PORTS.min, rtcMaxPort: PORTS.max });
  clip = await decodeClip(fixture('driving/d9.mp4'), 640, 480, 30, 150);
});

after(async () => {
  relay?.close();
  await server?.close();
  await settleWrtc();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the session rides out 5 % loss, 100 ms jitter, a 3 s blackout and a 300 kbit/s cap, recovering within 3 s of each, and the RTP metrics show it', { timeout: 420_000 }, async () => {
  const room = 'netfaults';
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 400_000 });
  const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
  try {
    await viewer.firstFrame(60_000);
    assert.ok(relay.flowCount >= 2, `the clients' media went around the relay (${relay.flowCount} flows)`);
    await waitFor(() => viewer.received.filter((r) => r.at > performance.now() - 1000).length >= 20, 30_000, 'a steady stream before the faults');

    const run = async (name: string, impairment: Impairment, faultMs: number): Promise<FaultOutcome & { ladderSteps: number }> => {
      const baseFrom = performance.now();
      await sleep(3000);
      const before = scrapeValues((await server.metrics.render()).body);
      const relayBefore = { up: relay.counts('up'), down: relay.counts('down') };
      relay.set(impairment);
      const from = performance.now();
      const estimates: number[] = [];
      for (let t = 0; t < faultMs; t += 500) {
        await sleep(Math.min(500, faultMs - t));
        const v = scrapeValues((await server.metrics.render()).body).get('reenact_viewer_bandwidth_estimate_min_bps');
        if (v !== undefined) estimates.push(v);
      }
      relay.set({});
      const to = performance.now();
      // At least 8 s to recover; longer (up to 30 s) while the latency is still high, so that the
      // next fault starts from a clean baseline and the recovery time is measured, not cut off.
      await sleep(8000);
      const baseP95 = percentile(latencies(actor, viewer).filter((l) => l.at > baseFrom && l.at <= from).map((l) => l.ms), 95);
      while (performance.now() - to < 30_000 && latencyBackFrom(latencies(actor, viewer), to, baseP95 + LATENCY_SLACK_MS) === null) await sleep(1000);
      const after = scrapeValues((await server.metrics.render()).body);
      const dropped = (d: 'up' | 'down'): number => {
        const c = relay.counts(d);
        const b = relayBefore[d];
        return c.lost + c.blackedOut + c.queueDropped - (b.lost + b.blackedOut + b.queueDropped);
      };
      const outcome = faultOutcome({
        name,
        frames: viewer.received.map((r) => r.at),
        latency: latencies(actor, viewer),
        baseline: [baseFrom, from],
        fault: [from, to],
        before,
        after,
        relayDropped: { up: dropped('up'), down: dropped('down') },
        relayDelayed: { up: relay.counts('up').delayed - relayBefore.up.delayed, down: relay.counts('down').delayed - relayBefore.down.delayed },
        estimateMinBps: estimates.length ? Math.min(...estimates) : null,
      });
      const withSteps = { ...outcome, ladderSteps: metricSum(after, 'reenact_bitrate_ladder_steps_total') - metricSum(before, 'reenact_bitrate_ladder_steps_total') };
      console.log('netfault', JSON.stringify(withSteps));
      return withSteps;
    };

    const loss = await run('loss 5 %', { loss: 0.05 }, 10_000);
    const jitter = await run('jitter 100 ms', { jitterMs: 100 }, 10_000);
    const blackout = await run('blackout 3 s', { blackout: true }, 3000);
    const cap = await run('cap 300 kbit/s', { rateBps: 300_000, queueMs: 1000 }, 10_000);

    for (const o of [loss, jitter, blackout, cap]) {
      const touched = o.relayDropped.up + o.relayDropped.down + o.relayDelayed.up + o.relayDelayed.down;
      assert.ok(touched > 0, `${o.name}: the relay neither dropped nor held back a packet, so nothing was tested`);
      // The goal is 3 s. A blackout's recovery is set by the actor's libwebrtc (its pacer and
      // estimate after 3 s without feedback) and measured 1.0-2.8 s here (docs/reliability.md):
      // the bound leaves room for a slower machine; a session that does not come back still fails.
      const bound = o === blackout ? 5000 : 3000;
      assert.ok(o.recoveryMs !== null && o.recoveryMs <= bound, `${o.name}: the stream was back to ≥ 80 % of its frame rate without freezes ${o.recoveryMs} ms after the fault ended`);
      assert.ok(o.latencyRecoveryMs !== null, `${o.name}: latency never came back near its baseline (${o.latencyRecoveryMs})`);
    }
    // What the metrics must have seen: losses repaired by NACK under random loss, the blackout's
    // missing packets, and the SFU's estimate toward the capped viewer falling under the cap.
    assert.ok(loss.rtp.nacks > 0 && loss.rtp.lost > 0, `5 % loss: the RTP metrics show no loss or NACK (${JSON.stringify(loss.rtp)})`);
    assert.ok(blackout.rtp.lost + blackout.rtp.keyframeRequests > 0, `blackout: the RTP metrics show nothing (${JSON.stringify(blackout.rtp)})`);
    assert.ok(cap.estimateMinBps !== null && cap.estimateMinBps < 600_000, `300 kbit/s cap: the viewer estimate stayed at ${cap.estimateMinBps} bit/s`);
    // Under 5 % loss the picture keeps moving: NACK repairs most of it. Under the cap it keeps moving
    // too, once the bitrate ladder has stepped down to what the link carries (ViewerBitrateFollower).
    assert.ok(loss.duringFps >= 0.5 * loss.baselineFps, `5 % loss: ${loss.duringFps} fps against ${loss.baselineFps} before`);
    assert.ok(cap.ladderSteps > 0, '300 kbit/s cap: the synthesized video was never stepped down');
    assert.ok(cap.duringFps >= 0.5 * cap.baselineFps, `300 kbit/s cap: ${cap.duringFps} fps against ${cap.baselineFps} before`);
    assert.ok(Number.isFinite(loss.latencyP95Ms.baseline), 'latency was measured before the faults');
  } finally {
    viewer.close();
    actor.stop();
  }
});
