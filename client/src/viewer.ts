/**
 * Viewer page (/view/<room>) and OBS page (/obs/<room>, <body class="obs">):
 * watch a room's synthesized video, any number of viewers at once, and keep
 * watching across reenactor restarts and network drops.
 *
 * URL options: lowLatency=0 (keep the browser's default jitter buffer; on by
 * default), jitterBufferTarget=<ms> (the target used when lowLatency is on,
 * default 0), status=0 (OBS page: never show the status text), fit=cover
 * (OBS page: fill the window, cropping, instead of letterboxing), audio=0
 * (picture only; by default the actor's voice plays with the face, and where
 * the browser's autoplay policy blocks sound a "click to unmute" button shows).
 */
import type { Banner } from './banner.ts';
import type { LiveState } from './live-room.ts';
import { LiveRoom } from './live-room.ts';
import { describeCode } from './messages.ts';
import { MediaStatsSampler, StatsPanel } from './stats.ts';
import { SynthWatcher, type SynthState } from './synth.ts';
import { $, roomFromPath, setBanner } from './ui.ts';

const params = new URLSearchParams(location.search);
const obs = document.body.classList.contains('obs');
const room = roomFromPath();
const lowLatency = params.get('lowLatency') !== '0';
const targetMs = Math.max(0, Math.min(4000, Number(params.get('jitterBufferTarget') ?? 0) || 0));
const video = $<HTMLVideoElement>('output');
const audio = params.get('audio') !== '0';
const unmute = $<HTMLButtonElement>('unmute');
document.body.dataset['audio'] = 'none';

let synthState: SynthState = 'waiting';
let liveState: LiveState = { state: 'connecting', attempt: 1 };
let synth: SynthWatcher | undefined;

function bannerFor(): Banner {
  switch (liveState.state) {
    case 'connecting':
      return { state: 'connecting', tone: 'info', pill: 'connecting', message: 'Connecting…' };
    case 'reconnecting':
      return { state: 'reconnecting', tone: 'warn', pill: 'reconnecting', message: `Connection lost (${liveState.message}); reconnecting…`, action: 'retry-now' };
    case 'busy':
      return { state: 'busy', tone: 'warn', pill: 'server busy', message: describeCode('E_BUSY'), action: 'retry-now' };
    case 'failed':
      return { state: 'failed', tone: 'error', pill: 'failed', message: `${liveState.code}: ${describeCode(liveState.code)}`, action: 'reload' };
    case 'closed':
      return { state: 'closed', tone: 'info', pill: 'closed', message: 'Disconnected.' };
    case 'live':
      break;
    default: {
      const never: never = liveState;
      return never;
    }
  }
  if (synthState === 'playing') return { state: 'live', tone: 'ok', pill: 'live', message: '' };
  return { state: 'waiting', tone: 'info', pill: 'waiting', message: 'Waiting for the actor: the video starts when someone acts in this room.' };
}

function render(): void {
  const b = bannerFor();
  setBanner(b, () => (b.action === 'reload' ? location.reload() : live.retryNow()));
  if (obs) {
    const s = $('status');
    s.hidden = b.state === 'live' || params.get('status') === '0';
    s.textContent = b.state === 'live' ? '' : `Reenact · ${room} · ${b.message}`;
  }
}

const live = LiveRoom.start({
  room,
  role: 'viewer',
  setup: async (client) => {
    synth?.close();
    synthState = 'waiting';
    synth = await SynthWatcher.start(client, { video, lowLatency, jitterBufferTargetMs: targetMs, audio });
    const showAudio = (): void => {
      const state = synth?.audioState ?? 'none';
      document.body.dataset['audio'] = state;
      unmute.hidden = state !== 'blocked';
    };
    synth.on('audioblocked', showAudio);
    synth.on('audioplaying', showAudio);
    showAudio();
    synthState = synth.state;
    const hint = (): void => {
      const h = synth?.latencyHint;
      document.body.dataset['latencyHint'] = h && h.api !== 'none' ? `${h.api}=${h.requestedMs}` : 'none';
    };
    synth.on('consumer', hint);
    hint();
    synth.on('state', (s) => {
      synthState = s;
      render();
    });
  },
});
live.on('state', (s) => {
  liveState = s;
  render();
});

unmute.addEventListener('click', () => void synth?.unmute().catch(() => undefined));

if (obs) {
  if (params.get('fit') === 'cover') video.classList.add('cover');
} else {
  $('room').textContent = room;
  const panel = new StatsPanel($('stats'), [
    ['recvFps', 'fps received'],
    ['size', 'size'],
    ['jitter', 'jitter buffer'],
    ['decode', 'decode'],
  ]);
  const sampler = new MediaStatsSampler();
  setInterval(() => void sampler.sample(undefined, synth?.consumer).then((m) => panel.render(m)), 1000);
}
window.addEventListener('pagehide', () => live.close());
render();
