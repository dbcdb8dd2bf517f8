/**
 * The virtual camera CLI against a real server: a wrtc actor publishes real
 * footage, the reenactor republishes it, and `server/src/virtualcam/cli.ts`
 * (a separate process, as a user runs it) writes the synthesized video to a
 * y4m file, which is then checked for frame count, pacing and faces, and the
 * room's sound (the actor's voice, relayed by the reenactor) to a WAV beside it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReenactServer } from '../server/src/server.ts';
import { readFrames } from '../server/src/media/video-io.ts';
import { Tracker } from '../server/src/tracking/tracker.ts';
import { FootageActor, decodeClip, type DecodedClip } from '../loadtest/peers.ts';
import { VoiceSender, decodeVoice, MARKER } from '../loadtest/audio.ts';
import { fixture, settleWrtc, startServer } from './helpers/server.ts';

const CLI = new URL('../server/src/virtualcam/cli.ts', import.meta.url).pathname;
const artifacts = new URL('./artifacts/', import.meta.url).pathname;

let server: ReenactServer;
let clip: DecodedClip;

before(async () => {
  await mkdir(artifacts, { recursive: true });
  server = await startServer();
  clip = await decodeClip(fixture('driving/d9.mp4'), 640, 480, 30, 150);
});

after(async () => {
  await server.close();
  await settleWrtc();
});

interface CliResult {
  code: number | null;
  stderr: string;
  summary: Record<string, number | string> | null;
}

function runCli(args: string[], timeoutMs: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`virtualcam did not exit within ${timeoutMs} ms:\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      const line = /virtualcam summary (\{.*\})/.exec(stderr)?.[1];
      resolve({ code, stderr, summary: line ? (JSON.parse(line) as Record<string, number | string>) : null });
    });
  });
}

/** Header fields and frame count of a y4m file (frames are fixed-size). */
async function readY4m(path: string): Promise<{ width: number; height: number; fps: number; frames: number }> {
  const buf = await readFile(path);
  const nl = buf.indexOf(0x0a);
  const header = buf.subarray(0, nl).toString();
  const w = Number(/ W(\d+)/.exec(header)?.[1]);
  const h = Number(/ H(\d+)/.exec(header)?.[1]);
  const f = /F(\d+):(\d+)/.exec(header);
  const frameBytes = 6 + w * h * 1.5;
  const body = buf.length - nl - 1;
  assert.equal(body % frameBytes, 0, 'y4m body is not a whole number of frames');
  return { width: w, height: h, fps: Number(f?.[1]) / Number(f?.[2]), frames: body / frameBytes };
}

/** A 16-bit mono WAV's rate, seconds, RMS, and how many marker tones (1 kHz bursts) it holds. */
async function readWav(path: string): Promise<{ rate: number; seconds: number; rms: number; markers: number }> {
  const buf = await readFile(path);
  assert.equal(buf.toString('ascii', 0, 4), 'RIFF');
  const rate = buf.readUInt32LE(24);
  const channels = buf.readUInt16LE(22);
  const bytes = buf.readUInt32LE(40);
  assert.equal(bytes, buf.length - 44, 'the data size in the header is the real one');
  const n = bytes / 2 / channels;
  let sum = 0;
  let markers = 0;
  let since = Infinity;
  const chunk = rate / 100;
  for (let c = 0; c + chunk <= n; c += chunk) {
    let re = 0, im = 0, e = 0;
    for (let i = 0; i < chunk; i++) {
      const v = buf.readInt16LE(44 + (c + i) * 2 * channels);
      re += v * Math.cos((2 * Math.PI * MARKER.hz * i) / rate);
      im += v * Math.sin((2 * Math.PI * MARKER.hz * i) / rate);
      e += v * v;
    }
    sum += e;
    const tone = e > 0 && (2 * (re * re + im * im)) / (chunk * e) > 0.5 && Math.sqrt(e / chunk) > MARKER.amplitude / 8;
    if (tone && since > 50) markers++;
    since = tone ? 0 : since + 1;
  }
  return { rate, seconds: n / rate, rms: Math.sqrt(sum / Math.max(1, n)), markers };
}

test('virtual camera writes 5 s of the synthesized video to y4m at a steady 30 fps (the frames show a face) and the voice to a WAV of the same length', { timeout: 90_000 }, async () => {
  const room = 'vcam-y4m';
  const out = join(artifacts, 'virtualcam.y4m');
  const wav = join(artifacts, 'virtualcam.wav');
  await rm(out, { force: true });
  await rm(wav, { force: true });
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 30_000, stamp: false });
  const voice = await VoiceSender.start(actor.peer, await decodeVoice(fixture('driving/d9.mp4'), 10_000));
  try {
    const res = await runCli(['--room', room, '--url', server.url, '--y4m', out, '--wav', wav, '--size', '640x480', '--duration', '5', '--wait', '40'], 60_000);
    assert.equal(res.code, 0, res.stderr.slice(-2000));
    assert.ok(res.summary, 'no summary line');
    console.log('virtualcam y4m', JSON.stringify(res.summary));
    const y4m = await readY4m(out);
    assert.deepEqual([y4m.width, y4m.height, y4m.fps], [640, 480, 30]);
    assert.ok(Math.abs(y4m.frames - 150) <= 15, `${y4m.frames} frames, expected 150 ± 10 %`);
    const fps = Number(res.summary['measuredFps']);
    assert.ok(Math.abs(fps - 30) <= 3, `output paced at ${fps} fps, expected 30 ± 10 %`);
    assert.ok(Number(res.summary['framesIn']) > 100, `only ${res.summary['framesIn']} frames came in`);
    const sound = await readWav(wav);
    console.log('virtualcam wav', JSON.stringify(sound));
    assert.equal(sound.rate, 48000);
    assert.ok(Math.abs(sound.seconds - y4m.frames / 30) <= 0.3, `${sound.seconds.toFixed(2)} s of sound for ${(y4m.frames / 30).toFixed(2)} s of video`);
    assert.ok(sound.rms > 100, `the WAV is (nearly) silent: RMS ${sound.rms.toFixed(1)}`);
    assert.ok(sound.markers >= 3, `only ${sound.markers} of the actor's once-a-second markers reached the WAV`);
    const tracker = await Tracker.create();
    try {
      let n = 0;
      let faces = 0;
      for await (const f of readFrames(out, { format: 'rgba' })) {
        if (n++ % 15 !== 7) continue;
        const t = await tracker.track(f, n * 33);
        if (t.faces > 0 && t.landmarks) faces++;
      }
      assert.ok(faces >= 9, `a face in only ${faces} of 10 sampled frames`);
    } finally {
      await tracker.close();
    }
  } finally {
    voice.stop();
    actor.stop();
  }
});

test('virtual camera keeps its frame rate (repeating the last frame) when the video stops, then says so and exits 0', { timeout: 90_000 }, async () => {
  const room = 'vcam-end';
  const out = join(artifacts, 'virtualcam-end.y4m');
  await rm(out, { force: true });
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 60_000, stamp: false });
  const cli = runCli(['--room', room, '--url', server.url, '--y4m', out, '--size', '640x480', '--grace', '2', '--wait', '40'], 75_000);
  // Let the camera write 2 s of video (a cold reenactor takes a while to load its pipeline), then the
  // actor leaves: its camera producer, then the synthesized one, close.
  const t0 = Date.now();
  while (((await stat(out).catch(() => null))?.size ?? 0) < 60 * (6 + 640 * 480 * 1.5)) {
    if (Date.now() - t0 > 45_000) throw new Error('the virtual camera wrote no video within 45 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  actor.stop();
  const res = await cli;
  assert.equal(res.code, 0, res.stderr.slice(-2000));
  assert.match(res.stderr, /video ended/);
  assert.ok(res.summary);
  console.log('virtualcam end', JSON.stringify(res.summary));
  assert.equal(res.summary['end'], 'video-ended');
  // The 2 s grace period was filled with repeats of the last frame at the output rate.
  assert.ok(Number(res.summary['repeated']) >= 50, `only ${res.summary['repeated']} repeated frames`);
  const fps = Number(res.summary['measuredFps']);
  assert.ok(Math.abs(fps - 30) <= 3, `output paced at ${fps} fps across the stall, expected 30 ± 10 %`);
  const y4m = await readY4m(out);
  assert.equal(y4m.frames, Number(res.summary['framesOut']));
});

test('virtual camera refuses bad usage (exit 2) and reports a v4l2 device it cannot write (exit 1)', { timeout: 30_000 }, async () => {
  const usage = await runCli(['--room', 'x'], 15_000);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /exactly one of --device/);
  const both = await runCli(['--room', 'x', '--device', '/dev/video99', '--y4m', '-'], 15_000);
  assert.equal(both.code, 2);
  const missing = await runCli(['--room', 'vcam-missing', '--url', server.url, '--device', '/dev/reenact-no-such-video'], 20_000);
  assert.equal(missing.code, 1, missing.stderr.slice(-2000));
  assert.match(missing.stderr, /reenact-no-such-video/);
  assert.equal(missing.summary?.['end'], 'output-failed');
});
