/**
 * Sound in the Chromium tests: a fake microphone WAV made from a fixture's
 * voice with the load tester's 1 kHz marker at the start of every second
 * (aligned with the fake camera's stamped frames 1, 31, 61, …), and a page
 * script that hears markers on audio tracks: the actor's own microphone
 * (getUserMedia is wrapped) and the audio the page plays in #output.
 *
 * Times are epoch ms (performance.timeOrigin + now) in every page, the same
 * clock as the stamp recorder in browser.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { MARKER, SAMPLE_RATE, decodeVoice } from '../../loadtest/audio.ts';
import { median } from '../../server/src/util/stats.ts';
import { artifactsDir } from './browser.ts';
import { fixture } from './server.ts';

/** A mono 48 kHz WAV of `seconds` of a fixture's voice from startS, with a marker at each whole second. */
export async function makeFakeMicrophone(source: string, startS: number, seconds: number): Promise<string> {
  await mkdir(artifactsDir, { recursive: true });
  const out = join(artifactsDir, `fakemic-${source.replace(/\W+/g, '_')}-${startS}-${seconds}.wav`);
  if (existsSync(out)) return out;
  const cut = join(artifactsDir, `fakemic-cut-${process.pid}.wav`);
  await new Promise<void>((resolve, reject) => {
    const p = spawn('ffmpeg', ['-v', 'error', '-y', '-ss', String(startS), '-t', String(seconds), '-i', fixture(source), '-vn', '-ac', '1', '-ar', String(SAMPLE_RATE), cut]);
    p.once('error', reject);
    p.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
  const voice = (await decodeVoice(cut, seconds * 1000)).samples;
  const n = seconds * SAMPLE_RATE;
  const pcm = new Int16Array(n);
  pcm.set(voice.subarray(0, n));
  const toneLen = (MARKER.ms / 1000) * SAMPLE_RATE;
  for (let s = 0; s < seconds; s++) {
    for (let i = 0; i < toneLen; i++) pcm[s * SAMPLE_RATE + i] = Math.round(MARKER.amplitude * Math.sin((2 * Math.PI * MARKER.hz * i) / SAMPLE_RATE));
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + n * 2, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(SAMPLE_RATE, 24);
  header.writeUInt32LE(SAMPLE_RATE * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(n * 2, 40);
  await writeFile(out, Buffer.concat([header, Buffer.from(pcm.buffer)]));
  return out;
}

/**
 * Page script (addInitScript): records marker onsets of the microphone the page opens into
 * `__micMarkers`, and of the audio playing in #output into `__outMarkers`. Each onset is the
 * start of the first 10 ms window (tried every 2.5 ms) that is nearly all 1 kHz tone, after at
 * least half a second without one.
 */
export function markerListenerScript(): string {
  return `(() => {
  const HZ = ${MARKER.hz}, MIN_RMS = ${MARKER.amplitude / 8 / 32768};
  const watched = new Set();
  const listen = (track, key) => {
    if (watched.has(track.id)) return;
    watched.add(track.id);
    globalThis[key] = globalThis[key] || [];
    const ctx = new AudioContext();
    const src = ctx.createMediaStreamSource(new MediaStream([track]));
    const proc = ctx.createScriptProcessor(1024, 1, 1);
    // A 10 ms window (selective enough that a vowel is not taken for the tone), tried every 2.5 ms.
    const win = Math.round(ctx.sampleRate / 100), step = Math.round(ctx.sampleRate / 400);
    const ring = new Float32Array(win);
    let filled = 0, sinceStep = 0, lastTone = -Infinity;
    proc.onaudioprocess = (e) => {
      const x = e.inputBuffer.getChannelData(0);
      // On the audio clock, not the (busy) main thread's: the block plays out at playbackTime, so
      // its input was taken one block before; getOutputTimestamp maps context time to page time.
      const ts = ctx.getOutputTimestamp();
      const startCtx = e.playbackTime - x.length / ctx.sampleRate;
      const start = performance.timeOrigin + ts.performanceTime + (startCtx - ts.contextTime) * 1000;
      for (let i = 0; i < x.length; i++) {
        ring.copyWithin(0, 1);
        ring[win - 1] = x[i];
        filled++;
        if (++sinceStep < step || filled < win) continue;
        sinceStep = 0;
        let re = 0, im = 0, en = 0;
        for (let j = 0; j < win; j++) {
          const w = 2 * Math.PI * HZ * j / ctx.sampleRate;
          re += ring[j] * Math.cos(w); im += ring[j] * Math.sin(w); en += ring[j] * ring[j];
        }
        const share = en > 0 ? 2 * (re * re + im * im) / (win * en) : 0;
        // The window ends at sample i: it began win samples before.
        const t = start + ((i + 1 - win) / ctx.sampleRate) * 1000;
        if (share > 0.8 && Math.sqrt(en / win) > MIN_RMS) {
          if (t - lastTone > 500) globalThis[key].push(t);
          lastTone = t;
        }
      }
    };
    src.connect(proc);
    proc.connect(ctx.destination);
    void ctx.resume();
  };
  const gum = navigator.mediaDevices && navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  if (gum) navigator.mediaDevices.getUserMedia = async (c) => {
    const s = await gum(c);
    for (const t of s.getAudioTracks()) listen(t, '__micMarkers');
    return s;
  };
  setInterval(() => {
    const v = document.getElementById('output');
    const s = v && v.srcObject;
    if (s && s.getAudioTracks) for (const t of s.getAudioTracks()) listen(t, '__outMarkers');
  }, 100);
})();`;
}

export async function markerOnsets(page: Page, key: '__micMarkers' | '__outMarkers'): Promise<number[]> {
  return page.evaluate((k) => [...(((globalThis as unknown as Record<string, number[]>)[k]) ?? [])], key);
}

/**
 * When the source played each marker, from the camera's clock: the fake camera and microphone
 * loop together, so the marker of second k sits a fixed time from the capture of frame
 * 1 + k·fps. That time is the median over every marker the actor page heard, and each marker's
 * source time is then its frame's capture time plus it: one missed or late detection at the
 * source cannot move a single pairing.
 */
export function sourceMarkerTimes(micMarkers: number[], captured: [number, number][], fps: number): number[] {
  const markerFrames = captured.filter(([id]) => (id - 1) % fps === 0).map(([, at]) => at);
  const gaps: number[] = [];
  for (const c of markerFrames) {
    let best = Infinity;
    for (const m of micMarkers) if (Math.abs(m - c) < Math.abs(best)) best = m - c;
    if (Math.abs(best) < 500) gaps.push(best);
  }
  if (gaps.length < 3) return micMarkers;
  const skew = median(gaps);
  return markerFrames.map((c) => c + skew);
}

/**
 * A/V offsets (ms, + = audio early) at a viewer against the source: each marker heard at the
 * viewer is paired with the latest source marker before it (under a second), and with the
 * camera-to-screen latency of the frames shown within ±0.5 s of it.
 */
export function pageAvOffsets(sourceMarkers: number[], viewerMarkers: number[], captured: [number, number][], shown: [number, number][]): { offsetMs: number; audioMs: number; videoMs: number }[] {
  const byId = new Map<number, number[]>();
  for (const [id, at] of captured) (byId.get(id) ?? byId.set(id, []).get(id)!).push(at);
  const video: { at: number; ms: number }[] = [];
  for (const [id, at] of shown) {
    let best = -Infinity;
    for (const t of byId.get(id) ?? []) if (t <= at && t > best) best = t;
    if (Number.isFinite(best) && at - best < 2000) video.push({ at, ms: at - best });
  }
  const out: { offsetMs: number; audioMs: number; videoMs: number }[] = [];
  for (const at of viewerMarkers) {
    let src = -Infinity;
    for (const s of sourceMarkers) if (s <= at && s > src) src = s;
    if (!(at - src < 1000)) continue;
    const near = video.filter((v) => Math.abs(v.at - at) <= 500).map((v) => v.ms);
    if (near.length < 3) continue;
    const videoMs = median(near);
    out.push({ offsetMs: videoMs - (at - src), audioMs: at - src, videoMs });
  }
  return out;
}
