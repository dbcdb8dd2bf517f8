/**
 * The provenance watermark (server/src/provenance): its payload, the field it
 * adds, and reading it back from real footage after a real-time codec at
 * 300 kbit/s; the verifier's exit codes. The full detection and
 * false-positive matrix is `npm run eval:watermark` (docs/provenance.md); the
 * live path through the reenactor and libwebrtc's VP8 is in live-provenance.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { detect } from '../server/src/provenance/detect.ts';
import { decodePayload, encodePayload, nameHash, PAYLOAD_BITS, tagValid } from '../server/src/provenance/payload.ts';
import { readCellFrames } from '../server/src/provenance/read.ts';
import { AMPLITUDE, axisWeights, cellMeans, chipField, GRID, WatermarkEmbedder } from '../server/src/provenance/watermark.ts';
import { encode, writeClip } from '../loadtest/eval/watermark.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, 'test', 'fixtures');
const KEY = 'test-key-test-key-test-key-test-key';
const WHO = { server: 'edge-1', room: 'demo', session: 'demo#3', time: 1_765_000_000 };

describe('payload', () => {
  it('round-trips, names its fields by hash, and is signed with the server key', () => {
    const bits = encodePayload(WHO, KEY);
    assert.equal(bits.length, PAYLOAD_BITS);
    const p = decodePayload(bits)!;
    assert.ok(p);
    assert.deepEqual([p.roomHash, p.sessionHash, p.time], [nameHash('demo', 16), nameHash('demo#3', 16), WHO.time]);
    assert.equal(tagValid(p, KEY), true);
    assert.equal(tagValid(p, 'another-key-another-key-another-key'), false);
  });

  it('a flipped bit fails the CRC', () => {
    const bits = encodePayload(WHO, KEY);
    let caught = 0;
    for (let i = 0; i < PAYLOAD_BITS; i++) {
      const b = Uint8Array.from(bits);
      b[i] = b[i]! ^ 1;
      if (decodePayload(b) === null) caught++;
    }
    assert.equal(caught, PAYLOAD_BITS, `${PAYLOAD_BITS - caught} single-bit errors passed the CRC`);
  });
});

describe('field', () => {
  it('moves each cell of a flat picture by ±AMPLITUDE as the chip says, and leaves its mean over all cells unchanged', () => {
    const W = 320, H = 240;
    const payload = encodePayload(WHO, KEY);
    const e = new WatermarkEmbedder(payload, 0);
    const y = new Uint8Array(W * H).fill(100);
    e.mark(y, W, H, 50); // inside chip 0, before its transition
    const means = new Float64Array(GRID * GRID);
    cellMeans(y, W, H, axisWeights(W), axisWeights(H), means);
    const want = new Float32Array(GRID * GRID);
    chipField(0, payload, want);
    // A cell's bump-weighted mean mixes in its neighbours' bumps: the sign holds, the size is most of it.
    let agree = 0;
    for (let c = 0; c < GRID * GRID; c++) if (Math.sign(means[c]! - 100) === want[c]) agree++;
    assert.ok(agree >= 60, `only ${agree}/64 cells moved the right way`);
    const mean = y.reduce((s, v) => s + v, 0) / y.length;
    assert.ok(Math.abs(mean - 100) < 0.1, `picture mean moved to ${mean.toFixed(3)}`);
    assert.ok(Math.max(...y) <= 100 + AMPLITUDE + 1 && Math.min(...y) >= 100 - AMPLITUDE - 1, 'a pixel moved more than the amplitude');
  });
});

describe('reading it back from real footage through a real-time codec', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'reenact-prov-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const payload = encodePayload(WHO, KEY);

  it('VP8 at 300 kbit/s, 256², a person talking: every one-second window is found and the payload reads back', async () => {
    const raw = join(tmp, 'marked.y4m'), enc = join(tmp, 'marked.webm');
    await writeClip(join(FIX, 'talking', 't1.mp4'), raw, 256, 256, 20 * 30, payload);
    encode(raw, enc, 'vp8', 300);
    const d = detect(await readCellFrames(enc), PAYLOAD_BITS);
    console.log(`marked, VP8 300 kbit/s: z ${d.z.toFixed(1)}, windows ${d.windows.filter((w) => w.marked).length}/${d.windows.length}, weakest bit z ${d.minBitZ.toFixed(2)}`);
    assert.ok(d.marked);
    assert.equal(d.windows.filter((w) => w.marked).length, d.windows.length);
    assert.deepEqual([...d.bits], [...payload]);
  });

  it('the same footage unmarked through the same codec is not called marked, nor is any window', async () => {
    const raw = join(tmp, 'plain.y4m'), enc = join(tmp, 'plain.webm');
    await writeClip(join(FIX, 'talking', 't1.mp4'), raw, 256, 256, 20 * 30, null);
    encode(raw, enc, 'vp8', 300);
    const d = detect(await readCellFrames(enc), PAYLOAD_BITS);
    assert.equal(d.marked, false, `unmarked footage scored z ${d.z.toFixed(1)}`);
    assert.equal(d.windows.filter((w) => w.marked).length, 0);
  });

  it('npm run verify exits 0 with the payload on a marked recording, 1 on an unmarked one, 2 on a file that is not video', () => {
    const verify = (file: string, dataDir: string) => spawnSync('node', ['--import', 'tsx', join(ROOT, 'server', 'src', 'provenance', 'cli.ts'), file, '--data-dir', dataDir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    // A data folder holding the key and the log, as the server that made it would.
    const dataDir = join(tmp, 'data');
    spawnSync('mkdir', ['-p', dataDir]);
    writeFileSync(join(dataDir, 'provenance.key'), `${KEY}\n`);
    writeFileSync(join(dataDir, 'provenance.jsonl'), `${JSON.stringify({ ...WHO, serverHash: nameHash(WHO.server, 12), roomHash: nameHash(WHO.room, 16), sessionHash: nameHash(WHO.session, 16) })}\n`);
    const yes = verify(join(tmp, 'marked.webm'), dataDir);
    assert.equal(yes.status, 0, yes.stderr + yes.stdout);
    assert.match(yes.stdout, /FOUND/);
    assert.match(yes.stdout, /signature valid/);
    assert.match(yes.stdout, /room demo, session demo#3/);
    const no = verify(join(tmp, 'plain.webm'), dataDir);
    assert.equal(no.status, 1, no.stderr + no.stdout);
    const junk = join(tmp, 'junk.mp4');
    writeFileSync(junk, 'not a video');
    assert.equal(verify(junk, dataDir).status, 2);
  });
});
