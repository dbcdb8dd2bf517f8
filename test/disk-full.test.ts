/**
 * A full disk under the data folder (a small tmpfs mounted for the test; skipped, saying why,
 * where mounting is not allowed): an upload is refused with E_STORAGE_FULL (507), nothing already
 * stored is lost or damaged, the server and a live session go on, and uploads work again once
 * there is room.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '../shared/errors.ts';
import { FootageActor, StampViewer, decodeClip } from '../loadtest/peers.ts';
import { fixture, settleWrtc, startServer } from './helpers/server.ts';

const mountPoint = await mkdtemp(join(tmpdir(), 'reenact-full-'));
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mountPoint]).status === 0;

test('a full data disk: uploads refused with E_STORAGE_FULL, stored uploads intact, the live session goes on, uploads resume once there is room', {
  timeout: 120_000,
  skip: mounted ? false : 'cannot mount a tmpfs here (needs root); the disk-full path is then untested',
}, async () => {
  const server = await startServer({ stage: 'passthrough', dataDir: mountPoint });
  const tmp = await mkdtemp(join(tmpdir(), 'reenact-full-src-'));
  let actor: FootageActor | undefined;
  let viewer: StampViewer | undefined;
  try {
    const clip = await decodeClip(fixture('driving/d9.mp4'), 320, 240, 15, 60);
    actor = await FootageActor.start({ url: server.url, token: server.tokens.sign('full-live', 'actor'), clip, durationMs: 120_000 });
    viewer = await StampViewer.start({ url: server.url, token: server.tokens.sign('full-live', 'viewer'), label: 'camera' });
    await viewer.firstFrame(30_000);
    const token = server.tokens.sign('full', 'actor');
    const post = async (path: string): Promise<{ status: number; code?: string }> => {
      const res = await fetch(`${server.url}/api/targets`, { method: 'POST', headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${token}` }, body: await readFile(path) });
      return { status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code };
    };
    const first = await post(fixture('targets/s42.jpg'));
    assert.equal(first.status, 201, JSON.stringify(first));
    const uploads = join(mountPoint, 'uploads');
    const stored = (await readdir(uploads)).filter((f) => /^u[0-9a-f]{16}\.jpg$/.test(f));
    assert.equal(stored.length, 1);
    const storedBytes = await readFile(join(uploads, stored[0]!));

    // Fill the disk to the last block.
    const filler = join(mountPoint, 'filler');
    spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    const mirrored = join(tmp, 'mirrored.jpg');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', fixture('targets/s42.jpg'), '-vf', 'hflip', '-q:v', '3', mirrored]);
    const full = await post(mirrored);
    assert.deepEqual(full, { status: 507, code: ErrorCodes.STORAGE_FULL });

    // Nothing stored was lost, nothing half-written was left, the server and the session go on.
    assert.deepEqual(await readFile(join(uploads, stored[0]!)), storedBytes);
    assert.deepEqual((await readdir(uploads)).filter((f) => f.startsWith('.incoming')), []);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    const n = viewer.received.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(viewer.received.length - n >= 10, `the live session stalled on a full disk (${viewer.received.length - n} frames in 1.5 s)`);

    await rm(filler);
    const again = await post(mirrored);
    assert.equal(again.status, 201, JSON.stringify(again));
  } finally {
    viewer?.close();
    actor?.stop();
    await server.close();
    await settleWrtc();
    await rm(tmp, { recursive: true, force: true });
    spawnSync('umount', [mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  }
});

test.after(() => {
  if (mounted) spawnSync('umount', [mountPoint]);
});

