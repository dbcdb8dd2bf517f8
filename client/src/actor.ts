/**
 * Actor page (/?room=<id>): opens the camera, publishes it (VP8), shows the
 * synthesized output with live stats, and lets the actor pick or upload a
 * target face. Connection loss, a busy server and camera problems each have
 * their own state (banner.ts); the page reconnects by itself (live-room.ts).
 *
 * The microphone (chosen beside the camera, echo cancellation and noise
 * suppression on) is published as Opus in both modes, with a mute button and a
 * level meter; the reenactor republishes it beside the synthesized face,
 * delayed to match. The page's own output plays muted (no echo).
 *
 * Privacy mode (checkbox, or privacy=1): the page tracks the face itself and
 * sends only landmarks (track-sender.ts) and the voice; no camera video is published.
 * Switching modes starts a fresh connection.
 *
 * URL options: room=<id> (default demo), lowLatency=0 (keep the browser's
 * default jitter buffer), overlay=1 (start with the face overlay on),
 * privacy=1 (start in privacy mode), debug=1 (window.reenactDebug for tests
 * and the console).
 */
import type { types as msc } from 'mediasoup-client';
import { isOutputProfile, type Notification, type SessionOptions } from '../../shared/protocol.ts';
import { bannerFor, type PageFacts } from './banner.ts';
import { CameraError, listCameras, openCamera } from './camera.ts';
import { LevelMeter, listMicrophones, microphoneAdvice, openMicrophone } from './microphone.ts';
import { LiveRoom } from './live-room.ts';
import { describeCode, toCoded } from './messages.ts';
import { ErrorCodes } from '../../shared/errors.ts';
import type { RoomClient } from './room-client.ts';
import { MediaStatsSampler, StatsPanel } from './stats.ts';
import { SynthWatcher } from './synth.ts';
import { TargetGallery } from './targets.ts';
import { TrackSender } from './track-sender.ts';
import { $, fillDevicePicker, roomFromQuery, setBanner } from './ui.ts';

const params = new URLSearchParams(location.search);
const room = roomFromQuery(params);
const lowLatency = params.get('lowLatency') !== '0';

const local = $<HTMLVideoElement>('local');
const output = $<HTMLVideoElement>('output');
const facts: PageFacts = { camera: 'opening', live: { state: 'connecting', attempt: 1 }, synth: 'waiting' };
let stream: MediaStream | undefined;
let producer: msc.Producer | undefined;
let synth: SynthWatcher | undefined;
let live: LiveRoom | undefined;
let privacy = params.get('privacy') === '1';
let sender: TrackSender | undefined;
let upstream: { bytes: number; at: number } | undefined;
let mic: MediaStream | undefined;
let micProducer: msc.Producer | undefined;
let meter: LevelMeter | undefined;
let muted = params.get('muted') === '1';

const stats = new StatsPanel($('stats'), [
  ['fpsIn', 'fps in (server)'],
  ['fpsOut', 'fps out (server)'],
  ['mode', 'sending'],
  ['sendFps', 'frames sent / s'],
  ['upstream', 'upstream'],
  ['tracking', 'on-device tracking'],
  ['recvFps', 'output fps received'],
  ['g2g', 'glass-to-glass'],
  ['server', 'server p50 / p95'],
  ['network', 'round trip up / down'],
  ['jitter', 'jitter buffer'],
  ['degrade', 'quality'],
  ['voice', 'voice'],
  ['drops', 'drops (1 s)'],
]);
const gallery = new TargetGallery(
  { gallery: $('gallery'), dropzone: $('dropzone'), input: $<HTMLInputElement>('upload'), note: $('targets-note') },
  () => live?.client,
);

function render(): void {
  const b = bannerFor(facts);
  setBanner(b, () => {
    if (b.action === 'retry-camera') void startCamera();
    else if (b.action === 'retry-now') live?.retryNow();
    else location.reload();
  });
}

function controlsNote(text: string, code?: string): void {
  const note = $('controls-note');
  note.textContent = text;
  if (code) note.dataset['code'] = code;
  else delete note.dataset['code'];
}

function onNotification(n: Notification): void {
  switch (n.method) {
    case 'sessionStatus':
      facts.session = n.data;
      break;
    case 'sessionStats':
      facts.stats = n.data;
      stats.setServer(n.data);
      if (n.data.targetId && n.data.targetId !== gallery.current) gallery.setCurrent(n.data.targetId);
      break;
    case 'targetChanged':
      gallery.setCurrent(n.data.targetId);
      break;
    case 'degradeChanged':
      controlsNote(n.data.level > 0 ? `Quality reduced to keep up (${n.data.reason}).` : 'Full quality restored.');
      break;
    case 'serverDraining':
      document.body.dataset['draining'] = String(n.data.graceMs);
      controlsNote(`The server is restarting: this session can go on for up to ${Math.round(n.data.graceMs / 1000)} s, then the page reconnects by itself.`, ErrorCodes.DRAINING);
      break;
    case 'newProducer':
    case 'producerClosed':
    case 'peerLeft':
    case 'roomClosed':
      break;
    default: {
      const never: never = n;
      void never;
    }
  }
  render();
}

/** Runs on every fresh connection: publish the camera, watch the output, load the targets. */
async function setup(client: RoomClient): Promise<void> {
  const track = stream?.getVideoTracks()[0];
  if (!track) throw new CameraError('not-found', 'no camera track');
  client.onNotification(onNotification);
  synth?.close();
  facts.session = undefined;
  facts.stats = undefined;
  facts.synth = 'waiting';
  synth = await SynthWatcher.start(client, { video: output, lowLatency });
  synth.on('state', (s) => {
    facts.synth = s;
    render();
  });
  facts.synth = synth.state;
  sender?.close();
  sender = undefined;
  upstream = undefined;
  if (privacy) sender = await TrackSender.start(local, await client.publishTracks());
  else producer = await client.publish(track, 'camera');
  micProducer = undefined;
  const voice = mic?.getAudioTracks()[0];
  if (voice) {
    micProducer = await client.publishAudio(voice);
    if (muted) micProducer.pause();
  }
  // The room keeps its options across reconnects (and REENACT_LIP_ZERO sets lip zero's default):
  // show what the server has. Not knowing them is no reason to drop the connection.
  await client.signal
    .request('setOptions', {})
    .then(showOptions)
    .catch(() => undefined);
  $<HTMLInputElement>('sbs').disabled = privacy;
  document.body.dataset['privacy'] = String(privacy);
}

/** Switches between camera video and landmarks only, on a fresh connection. */
function setPrivacy(on: boolean): void {
  if (on === privacy) return;
  privacy = on;
  sender?.close();
  sender = undefined;
  producer = undefined;
  micProducer = undefined;
  live?.close();
  live = undefined;
  controlsNote(on ? 'Privacy mode: only face landmarks leave this device; the camera picture stays here.' : '');
  if (stream) startLive();
}

async function startCamera(deviceId?: string): Promise<void> {
  facts.camera = 'opening';
  render();
  let next: MediaStream;
  try {
    next = await openCamera(deviceId);
  } catch (err) {
    facts.camera = err instanceof CameraError ? err.problem : 'other';
    facts.cameraDetail = err instanceof Error ? err.message : String(err);
    render();
    return;
  }
  const track = next.getVideoTracks()[0];
  track?.addEventListener('ended', () => {
    if (stream !== next) return;
    facts.camera = 'ended';
    render();
  });
  const old = stream;
  stream = next;
  local.srcObject = next;
  facts.camera = 'ok';
  if (producer && !producer.closed && track) await producer.replaceTrack({ track }).catch(() => undefined);
  old?.getTracks().forEach((t) => t.stop());
  await fillCameraPicker(track?.getSettings().deviceId);
  if (!live) startLive();
  render();
}

async function fillCameraPicker(current: string | undefined): Promise<void> {
  fillDevicePicker($<HTMLSelectElement>('camera'), await listCameras().catch(() => []), current, 'camera');
}

/** Opens (or switches) the microphone; failing leaves the camera going and says why. */
async function startMicrophone(deviceId?: string): Promise<void> {
  const note = $('mic-note');
  let next: MediaStream;
  try {
    next = await openMicrophone(deviceId);
  } catch (err) {
    note.textContent = microphoneAdvice(err);
    document.body.dataset['mic'] = 'failed';
    return;
  }
  const track = next.getAudioTracks()[0];
  const old = mic;
  mic = next;
  if (track) track.enabled = !muted;
  meter?.close();
  if (track) meter = new LevelMeter(track, $<HTMLMeterElement>('mic-level'));
  if (micProducer && !micProducer.closed && track) await micProducer.replaceTrack({ track }).catch(() => undefined);
  else if (track && live?.client && !live.client.closed) {
    micProducer = await live.client.publishAudio(track).catch(() => undefined);
    if (muted) micProducer?.pause();
  }
  old?.getTracks().forEach((t) => t.stop());
  note.textContent = '';
  document.body.dataset['mic'] = 'on';
  fillDevicePicker($<HTMLSelectElement>('microphone'), await listMicrophones().catch(() => []), track?.getSettings().deviceId, 'microphone');
}

/** Mute stops sending (the producer pauses) and silences the track; the room hears nothing until unmuted. */
function setMuted(on: boolean): void {
  muted = on;
  const track = mic?.getAudioTracks()[0];
  if (track) track.enabled = !on;
  if (micProducer && !micProducer.closed) {
    if (on) micProducer.pause();
    else micProducer.resume();
  }
  const button = $<HTMLButtonElement>('mute');
  button.textContent = on ? 'unmute' : 'mute';
  button.setAttribute('aria-pressed', String(on));
  document.body.dataset['muted'] = String(on);
}

function startLive(): void {
  live = LiveRoom.start({ room, role: 'actor', setup });
  live.on('state', (s) => {
    facts.live = s;
    if (s.state !== 'live') producer = undefined;
    render();
  });
  live.on('client', () => void gallery.refresh());
}

function showOptions(o: SessionOptions): void {
  $<HTMLInputElement>('sbs').checked = o.sideBySide;
  $<HTMLInputElement>('lipzero').checked = o.lipZero;
  $<HTMLSelectElement>('profile').value = o.output;
  document.body.dataset['output'] = o.output;
}

type Control = 'resetNeutral' | keyof SessionOptions;

async function request<K extends Control>(what: K, value?: K extends keyof SessionOptions ? SessionOptions[K] : never): Promise<void> {
  const client = live?.client;
  try {
    if (!client) throw new Error('not connected');
    if (what === 'resetNeutral') await client.signal.request('resetNeutral', {});
    else showOptions(await client.signal.request('setOptions', { [what]: value }));
    controlsNote(what === 'resetNeutral' ? 'Neutral pose reset.' : '');
    document.body.dataset['lastControl'] = `${what}:ok`;
  } catch (err) {
    const { code, message } = toCoded(err);
    const box = what === 'sideBySide' ? 'sbs' : what === 'lipZero' ? 'lipzero' : null;
    if (box) $<HTMLInputElement>(box).checked = !value;
    controlsNote(`${code}: ${describeCode(code)} (${message})`, code);
    document.body.dataset['lastControl'] = `${what}:${code}`;
  }
}

function wireControls(): void {
  const stage = $('stage');
  $<HTMLInputElement>('pip').addEventListener('change', (e) => {
    const on = (e.target as HTMLInputElement).checked;
    stage.classList.toggle('pip', on);
    stage.classList.toggle('split', !on);
  });
  $<HTMLInputElement>('sbs').addEventListener('change', (e) => void request('sideBySide', (e.target as HTMLInputElement).checked));
  $<HTMLInputElement>('lipzero').addEventListener('change', (e) => void request('lipZero', (e.target as HTMLInputElement).checked));
  $<HTMLSelectElement>('profile').addEventListener('change', (e) => {
    const v = (e.target as HTMLSelectElement).value;
    if (isOutputProfile(v)) void request('output', v);
  });
  $('reset').addEventListener('click', () => void request('resetNeutral'));
  $('popout').addEventListener('click', () => {
    if (document.pictureInPictureElement) void document.exitPictureInPicture();
    else output.requestPictureInPicture().catch((err: unknown) => controlsNote(`Pop-out unavailable: ${err instanceof Error ? err.message : String(err)}`));
  });
  $<HTMLSelectElement>('camera').addEventListener('change', (e) => void startCamera((e.target as HTMLSelectElement).value));
  $<HTMLSelectElement>('microphone').addEventListener('change', (e) => void startMicrophone((e.target as HTMLSelectElement).value));
  $('mute').addEventListener('click', () => setMuted(!muted));
  setMuted(muted);
  const privacyBox = $<HTMLInputElement>('privacy');
  privacyBox.checked = privacy;
  privacyBox.addEventListener('change', () => setPrivacy(privacyBox.checked));
  const overlayBox = $<HTMLInputElement>('face-overlay');
  overlayBox.addEventListener('change', () => void toggleOverlay(overlayBox.checked));
  if (params.get('overlay') === '1') {
    overlayBox.checked = true;
    void toggleOverlay(true);
  }
}

let overlay: import('./overlay.ts').FaceOverlay | undefined;
// ?debug=1 exposes the page's parts to tests and the console.
if (params.get('debug') === '1') Object.assign(window, { reenactDebug: { overlay: () => overlay, live: () => live, sender: () => sender } });
async function toggleOverlay(on: boolean): Promise<void> {
  overlay?.close();
  overlay = undefined;
  if (!on) return;
  try {
    const { FaceOverlay } = await import('./overlay.ts');
    overlay = await FaceOverlay.start(local, $<HTMLCanvasElement>('overlay'));
    controlsNote('');
  } catch (err) {
    $<HTMLInputElement>('face-overlay').checked = false;
    controlsNote(`Face overlay unavailable: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const sampler = new MediaStatsSampler();
/** Upstream bits per second of the send transport (all of it: media or data, and headers), over the last interval. */
async function upstreamKbps(): Promise<{ kbps?: number; rttMs?: number }> {
  const s = await live?.client?.sendStats();
  if (!s) return {};
  const now = performance.now();
  const prev = upstream;
  upstream = { bytes: s.bytes, at: now };
  if (!prev || s.bytes < prev.bytes) return { rttMs: s.rttMs };
  return { kbps: ((s.bytes - prev.bytes) * 8) / (now - prev.at), rttMs: s.rttMs };
}

setInterval(() => {
  void Promise.all([sampler.sample(producer, synth?.consumer), upstreamKbps()]).then(([m, up]) => {
    m.upKbps = up.kbps;
    m.rttUpMs ??= up.rttMs;
    if (sender) {
      m.sendFps = sender.stats.fps;
      m.trackMs = sender.stats.trackMs;
    }
    m.mode = privacy ? 'landmarks only' : 'camera video';
    stats.render(m);
  });
  render();
}, 1000);

$('room').textContent = room;
$<HTMLAnchorElement>('viewer-link').href = `/view/${encodeURIComponent(room)}`;
$<HTMLAnchorElement>('obs-link').href = `/obs/${encodeURIComponent(room)}`;
wireControls();
window.addEventListener('pagehide', () => live?.close());
// The microphone opens first (quickly, or fails without holding anything up) so the first
// connection publishes the voice with the camera.
void startMicrophone().finally(() => void startCamera());
