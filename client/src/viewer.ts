/** Viewer page (/view/<room>): watches a room's synthesized video. */
import { RoomClient, fetchToken, watchSynthesized } from './room-client.ts';

const status = (t: string): void => {
  const el = document.getElementById('status');
  if (el) el.textContent = t;
};

async function main(): Promise<void> {
  const room = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] ?? 'demo');
  const roomEl = document.getElementById('room');
  if (roomEl) roomEl.textContent = room;
  const client = await RoomClient.connect(await fetchToken(room, 'viewer'));
  await watchSynthesized(client, document.getElementById('output') as HTMLVideoElement, status);
}

main().catch((err: unknown) => status(`error: ${err instanceof Error ? err.message : String(err)}`));
