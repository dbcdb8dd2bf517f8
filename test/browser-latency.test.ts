/**
 * What the viewer's low-latency receiver (RTCRtpReceiver.jitterBufferTarget)
 * buys, measured glass to glass in real Chromium: a wrtc actor publishes
 * stamped footage, the reenactor (passthrough, measurement mode) copies the
 * stamps into its output, and viewer pages with different receiver settings
 * watch the room at the same time. Each page reads the stamp of every frame
 * it presents (requestVideoFrameCallback, expectedDisplayTime) and the test
 * matches it against the actor's send time: both clocks are the machine's
 * wall clock (performance.timeOrigin + now).
 *
 * Writes test/artifacts/jitter-buffer-target.json.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { ReenactServer } from '../server/src/server.ts';
import { FootageActor, decodeClip, percentile, type DecodedClip } from '../loadtest/peers.ts';
import { fixture, settleWrtc, startServer } from './helpers/server.ts';
import { artifactsDir, chromiumAvailable, launchBrowser, recordedStamps, startRecording, stampReaderScript, waitForPlayback, type TestBrowser } from './helpers/browser.ts';

const skip = chromiumAvailable() ? false : 'Chromium is not installed at /usr/bin/chromium';

let server: ReenactServer;
let browser: TestBrowser;
let clip: DecodedClip;
let stampScript: string;

before(async () => {
  if (skip) return;
  await mkdir(artifactsDir, { recursive: true });
  server = await startServer({ stage: 'passthrough', measurement: true });
  browser = await launchBrowser();
  clip = await decodeClip(fixture('driving/d9.mp4'), 640, 480, 30, 150);
  stampScript = await stampReaderScript();
});

after(async () => {
  if (skip) return;
  await browser?.close();
  await server?.close();
  await settleWrtc();
});

interface Condition {
  name: string;
  query: string;
  page?: Page;
}

test('viewer jitterBufferTarget=0 against the browser default: glass-to-glass measured per frame in Chromium', { timeout: 120_000, skip }, async () => {
  const room = 'latency';
  const actor = await FootageActor.start({ url: server.url, token: server.tokens.sign(room, 'actor'), clip, durationMs: 40_000 });
  const conditions: Condition[] = [
    { name: 'browser default (lowLatency=0)', query: '?lowLatency=0' },
    { name: 'jitterBufferTarget=0 (page default)', query: '' },
    { name: 'jitterBufferTarget=300 (control: the knob takes effect)', query: '?jitterBufferTarget=300' },
  ];
  try {
    for (const c of conditions) {
      c.page = await browser.newWindow();
      await c.page.addInitScript(stampScript);
      await c.page.goto(`${server.url}/view/${room}${c.query}`);
    }
    for (const c of conditions) await waitForPlayback(c.page!, '#output', 1, 30_000);
    // Let the jitter buffers settle, then record every page over the same window.
    await new Promise((r) => setTimeout(r, 4000));
    for (const c of conditions) await startRecording(c.page!);
    await new Promise((r) => setTimeout(r, 12_000));
    const report = [];
    for (const c of conditions) {
      const page = c.page!;
      const shown = await recordedStamps(page);
      const hint = await page.evaluate(() => document.body.dataset['latencyHint']);
      const jitterMs = Number(await page.evaluate(() => document.getElementById('stats')?.dataset['jitterMs']));
      const ms: number[] = [];
      const seen = new Set<number>();
      for (const [id, at] of shown) {
        const sent = actor.sentAt.get(id);
        if (sent === undefined || seen.has(id)) continue;
        seen.add(id);
        ms.push(at - (performance.timeOrigin + sent));
      }
      report.push({
        condition: c.name,
        receiver: hint,
        framesMatched: ms.length,
        glassToGlassMs: { p50: percentile(ms, 50), p95: percentile(ms, 95), min: Math.min(...ms) },
        browserJitterBufferMs: jitterMs,
      });
    }
    const out = { chromium: browser.context.browser()?.version() ?? 'persistent context', cores: (await import('node:os')).availableParallelism(), report };
    console.log('jitterBufferTarget', JSON.stringify(out));
    await writeFile(join(artifactsDir, 'jitter-buffer-target.json'), JSON.stringify(out, null, 2));
    for (const r of report) assert.ok(r.framesMatched >= 100, `${r.condition}: only ${r.framesMatched} stamped frames matched`);
    const [def, low, high] = report;
    assert.equal(low?.receiver, 'jitterBufferTarget=0');
    assert.equal(def?.receiver, 'none');
    // The control shows the measurement sees receiver buffering: 300 ms target → clearly later frames.
    assert.ok((high?.glassToGlassMs.p50 ?? 0) > (low?.glassToGlassMs.p50 ?? 0) + 100, 'a 300 ms jitter buffer target did not show up in the measurement');
  } finally {
    for (const c of conditions) await c.page?.close();
    actor.stop();
  }
});
