/**
 * What publishing the synthesized video again costs the reenactor child: one passthrough session
 * (d9, 640×480, 30 fps, a wrtc actor and viewer), then N bitrate-ladder steps (each republishes
 * the video: video-publisher.ts) 2 s apart, with the child's RSS, open fds and threads read from
 * /proc every 10 steps, and 15 s after the session has ended (the child stays for the next).
 * `--mode none` runs the same session for the same time without steps, as the control. The soak (docs/reliability.md) saw the child's fds and RSS step up where a
 * session's ladder first stepped.
 *
 *   node --import tsx loadtest/republish-cost.ts [--steps 40] [--mode republish|none]
 */
import { parseArgs } from 'node:util';
import { readdir, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { FootageActor, StampViewer, decodeClip } from './peers.ts';
import { fixture, settleWrtc, startServer } from '../test/helpers/server.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '40' }, mode: { type: 'string', default: 'republish' } } });
const STEPS = Number(values.steps);
const republish = values.mode === 'republish';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const server = await startServer({ stage: 'passthrough', measurement: true });
const clip = await decodeClip(fixture('driving/d9.mp4'), 640, 480, 30, 150);
const room = 'republish-cost';
const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: STEPS * 2000 + 120_000 });
const viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign(room, 'viewer') });
try {
  await viewer.firstFrame(60_000);
  const pid = Number(execFileSync('pgrep', ['-f', '-P', String(process.pid), 'reenactor/child.ts']).toString().trim().split('\n')[0]);
  const sample = async (): Promise<{ rssMb: number; fds: number; threads: number; viewerProducers: number }> => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return {
      rssMb: Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 102.4) / 10,
      fds: (await readdir(`/proc/${pid}/fd`)).length,
      threads: Number(/Threads:\s+(\d+)/.exec(status)?.[1]),
      viewerProducers: viewer.producers.length,
    };
  };
  await sleep(10_000);
  console.log('before', JSON.stringify(await sample()));
  for (let i = 0; i < STEPS; i++) {
    if (republish) await server.supervisor.control(room, { type: 'setMaxBitrate', bps: i % 2 === 0 ? server.config.outputBitrate / 2 : server.config.outputBitrate });
    await sleep(2000);
    if (i % 10 === 9) console.log(values.mode, i + 1, JSON.stringify(await sample()));
  }
  await sleep(10_000);
  console.log('after', JSON.stringify(await sample()));
  // The session ends; the child stays (it serves the next ones): is what the steps took given back?
  actor.stop();
  viewer.close();
  await sleep(15_000);
  console.log('session ended', JSON.stringify(await sample()));
} finally {
  viewer.close();
  actor.stop();
  await server.close();
  await settleWrtc();
}
process.exit(0);
