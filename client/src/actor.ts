/** Actor page: publishes the webcam (VP8) and shows the synthesized output. */
import { RoomClient, fetchToken, watchSynthesized } from './room-client.ts';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const status = (t: string): void => {
  $('status').textContent = t;
};

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const room = params.get('room') ?? 'demo';
  $('room').textContent = room;
  $<HTMLAnchorElement>('viewer-link').href = `/view/${encodeURIComponent(room)}`;
  status('asking for the camera');
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: false });
  } catch (err) {
    status(`no camera: ${(err as Error).message}`);
    return;
  }
  $<HTMLVideoElement>('local').srcObject = stream;
  status('connecting');
  const client = await RoomClient.connect(await fetchToken(room, 'actor'));
  const track = stream.getVideoTracks()[0];
  if (!track) throw new Error('camera gave no video track');
  await client.publish(track, 'camera');
  await watchSynthesized(client, $<HTMLVideoElement>('output'), status);
}

main().catch((err: unknown) => status(`error: ${err instanceof Error ? err.message : String(err)}`));
