/**
 * Where the time goes in and after one network fault: one reenact session
 * through the impairing relay (as test/network-faults.test.ts), a 3 s
 * blackout (`--fault blackout`) or a 300 kbit/s cap for 10 s (`--fault cap`),
 * RUNS times, with a timeline per run measured from the moment the link
 * came back (ms):
 *
 * - `actorMedia`: the first 50 ms in which the actor sent more than 2 KB
 *   up through the relay (its pacer releasing media, not just STUN/RTCP);
 * - `viewerFirst`: the viewer's first frame, and `firstAge`, how old the
 *   actor's frame it shows was when it arrived;
 * - `fresh`: the first viewer frame showing an actor frame captured after
 *   the link came back;
 * - `steady`: the fault-outcome measure (2 s at >= 80 % of the baseline
 *   frame rate, no gap over 250 ms);
 * - `fps`: the viewer's frames in each second from the fault's start;
 * - the server's log lines about the bitrate ladder, with their times
 *   (REENACT_LOG_LEVEL=info; the reenactor child writes its own straight
 *   to stderr).
 *
 *   REENACT_LOG_LEVEL=info node --import tsx loadtest/fault-timeline.ts [--fault blackout|cap] [--runs 3]
 */
import { parseArgs } from 'node:util';
import { ImpairmentRelay, type Impairment } from './impair.ts';
import { FootageActor, StampViewer, decodeClip } from './peers.ts';
import { steadyFrom } from './fault-outcome.ts';
import { fixture, settleWrtc, startServer, waitFor } from '../test/helpers/server.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, fault: { type: 'string', default: 'blackout' } } });
const RUNS = Number(values.runs);
const FAULTS: Record<string, { impairment: Impairment; ms: number }> = {
  blackout: { impairment: { blackout: true }, ms: 3000 },
  cap: { impairment: { rateBps: 300_000, queueMs: 1000 }, ms: 10_000 },
};
const fault = FAULTS[values.fault ?? ''];
if (!fault) throw new Error(`--fault is one of ${Object.keys(FAULTS).join(', ')}`);

// This process's log lines (the server runs in it): keep those about the ladder.
const events: { at: number; msg: string }[] = [];
const wallToPerf = (iso: string): number => Date.parse(iso) - Date.now() + performance.now();
const write = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { t?: string; msg?: string; bps?: number };
      if (j.t && j.msg && /follows the slowest viewer/.test(j.msg)) events.push({ at: wallToPerf(j.t), msg: j.bps === undefined ? j.msg : `${j.msg} ${j.bps}` });
    } catch {
      // not a log line
    }
  }
  return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stderr.write;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PORTS = { min: 46_100, max: 46_149 };
const relay = await ImpairmentRelay.start({ relayIp: '127.0.0.2', targetIp: '127.0.0.1', minPort: PORTS.min, maxPort: PORTS.max, seed: 7 });
const server = await startServer({ stage: 'reenact', measurement: true, announcedIp: '127.0.0.2', rtcMinPort: PORTS.min, rtcMaxPort: PORTS.max });
const clip = await decodeClip(fixture('driving/d9.mp4'), 640, 480, 30, 150);
const room = 'fault-timeline';
const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 100_000 * RUNS + 60_000 });
const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
const rows: Record<string, unknown>[] = [];
try {
  await viewer.firstFrame(60_000);
  await waitFor(() => viewer.received.filter((r) => r.at > performance.now() - 1000).length >= 20, 30_000, 'a steady stream');
  const full = server.config.outputBitrate * 0.8;
  const sending = async (): Promise<number> => (await server.rooms.get(room)?.synthesizedVideo?.getStats().catch(() => []))?.[0]?.bitrate ?? 0;
  for (let run = 0; run < RUNS; run++) {
    await sleep(5000);
    // Each run starts from full bitrate: the ladder back at its top after the last cap.
    for (let waited = 0; waited < 60_000 && (await sending()) < full; waited += 1000) await sleep(1000);
    const baseFps = viewer.received.filter((r) => r.at > performance.now() - 3000).length / 3;
    relay.set(fault.impairment);
    const from = performance.now();
    await sleep(fault.ms);
    const upBytes: { at: number; bytes: number }[] = [];
    relay.set({});
    const to = performance.now();
    const sampler = setInterval(() => upBytes.push({ at: performance.now(), bytes: relay.counts('up').bytes }), 50);
    await sleep(10_000);
    clearInterval(sampler);
    const rel = (t: number | undefined | null): number | null => (t === undefined || t === null ? null : Math.round(t - to));
    let actorMedia: number | undefined;
    for (let i = 1; i < upBytes.length; i++) {
      if (upBytes[i]!.bytes - upBytes[i - 1]!.bytes > 2048) {
        actorMedia = upBytes[i - 1]!.at;
        break;
      }
    }
    const after = viewer.received.filter((r) => r.at > to);
    const first = after[0];
    const sent = (id: number | null): number | undefined => (id === null ? undefined : actor.sentAt.get(id));
    const fresh = after.find((r) => (sent(r.id) ?? 0) > to);
    const row = {
      run,
      baseFps: Math.round(baseFps * 10) / 10,
      lastBeforeLift: rel(viewer.received.filter((r) => r.at <= to).at(-1)?.at),
      actorMedia: rel(actorMedia),
      viewerFirst: rel(first?.at),
      firstAge: first ? Math.round(first.at - (sent(first.id) ?? NaN)) : null,
      fresh: rel(fresh?.at),
      steady: rel(steadyFrom(viewer.received.map((r) => r.at), to, baseFps)),
      fps: Array.from({ length: Math.ceil((to - from) / 1000) + 6 }, (_, i) => viewer.received.filter((r) => r.at > from + i * 1000 && r.at <= from + (i + 1) * 1000).length).join(' '),
      producers: viewer.producers.length,
      sentKbps: Math.round((await sending()) / 1000),
      events: events.filter((e) => e.at > from - 500 && e.at < to + 10_000).map((e) => `${rel(e.at)} ${e.msg}`),
    };
    rows.push(row);
    console.log(values.fault, JSON.stringify(row));
  }
} finally {
  viewer.close();
  actor.stop();
  relay.close();
  await server.close();
  await settleWrtc();
}
const med = (k: string): number | null => {
  const v = rows.map((r) => r[k]).filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)]! : null;
};
console.log('median', JSON.stringify(Object.fromEntries(['actorMedia', 'viewerFirst', 'firstAge', 'fresh', 'steady'].map((k) => [k, med(k)]))));
process.exit(0);
