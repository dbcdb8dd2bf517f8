/**
 * Turns everything the actor page knows (camera, connection, reenactor
 * session, output, face) into one state name and one message, most urgent
 * first. The state name lands on <body data-state> so tests and styles can
 * follow it; the message goes into the notice bar.
 */
import type { SessionState, SessionStatsData } from '../../shared/protocol.ts';
import { cameraAdvice, type CameraProblem } from './camera.ts';
import type { LiveState } from './live-room.ts';
import { describeCode } from './messages.ts';
import type { SynthState } from './synth.ts';

export interface PageFacts {
  camera: 'opening' | 'ok' | CameraProblem | 'ended';
  cameraDetail?: string;
  live: LiveState;
  session?: { state: SessionState; code?: string; message?: string };
  synth: SynthState;
  stats?: SessionStatsData;
}

export type Tone = 'ok' | 'info' | 'warn' | 'error';

export interface Banner {
  /** Short machine-readable state, e.g. 'live', 'busy', 'camera-denied', 'no-face'. */
  state: string;
  tone: Tone;
  /** Header pill text. */
  pill: string;
  /** Notice-bar sentence; empty hides the bar. */
  message: string;
  action?: 'retry-camera' | 'retry-now' | 'reload';
}

const secs = (ms: number): string => `${Math.max(1, Math.round(ms / 1000))} s`;

function cameraBanner(f: PageFacts): Banner | undefined {
  if (f.camera === 'ok') return undefined;
  if (f.camera === 'opening') return { state: 'camera-opening', tone: 'info', pill: 'camera…', message: 'Asking for the camera…' };
  if (f.camera === 'ended') {
    return { state: 'camera-ended', tone: 'error', pill: 'no camera', message: 'The camera stopped (unplugged or taken by another app).', action: 'retry-camera' };
  }
  const detail = f.cameraDetail ? ` (${f.cameraDetail})` : '';
  return { state: `camera-${f.camera}`, tone: 'error', pill: 'no camera', message: cameraAdvice[f.camera] + detail, action: f.camera === 'insecure' ? undefined : 'retry-camera' };
}

function connectionBanner(live: LiveState): Banner | undefined {
  switch (live.state) {
    case 'live':
      return undefined;
    case 'connecting':
      return { state: 'connecting', tone: 'info', pill: 'connecting', message: live.attempt > 1 ? `Connecting (attempt ${live.attempt})…` : 'Connecting…' };
    case 'busy':
      return { state: 'busy', tone: 'warn', pill: 'server busy', message: `E_BUSY: ${describeCode('E_BUSY')} Next try in ${secs(live.retryInMs)}.`, action: 'retry-now' };
    case 'reconnecting':
      return {
        state: 'reconnecting',
        tone: 'warn',
        pill: 'reconnecting',
        message: `${live.code === 'E_NETWORK' ? `Connection lost (${live.message})` : `Not connected (${live.code}: ${live.message})`}. Reconnecting in ${secs(live.retryInMs)}${live.attempt > 1 ? `, attempt ${live.attempt}` : ''}…`,
        action: 'retry-now',
      };
    case 'failed':
      return { state: 'failed', tone: 'error', pill: 'failed', message: `${live.code}: ${describeCode(live.code)}`, action: 'reload' };
    case 'closed':
      return { state: 'closed', tone: 'info', pill: 'closed', message: 'Disconnected.' };
    default: {
      const never: never = live;
      return never;
    }
  }
}

function sessionBanner(f: PageFacts): Banner | undefined {
  const s = f.session;
  if (s?.state === 'failed') {
    return { state: 'session-failed', tone: 'error', pill: 'reenactor failed', message: `The reenactor could not run this session${s.message ? `: ${s.message}` : ''}.` };
  }
  if (s?.state === 'waiting') {
    return { state: 'session-waiting', tone: 'warn', pill: 'waiting', message: 'Waiting for a renderer: every reenactor host is busy. The session starts as soon as one is free.' };
  }
  if (s?.state === 'restarting') return { state: 'session-restarting', tone: 'warn', pill: 'restarting', message: describeCode(s.code ?? 'E_REENACTOR_RESTARTING') };
  if (f.synth === 'waiting') return { state: 'waiting-output', tone: 'info', pill: 'starting', message: 'Starting the reenactor; the output appears in a moment…' };
  return undefined;
}

/** The one banner for the page's current facts. */
export function bannerFor(f: PageFacts): Banner {
  const urgent = cameraBanner(f) ?? connectionBanner(f.live) ?? sessionBanner(f);
  if (urgent) return urgent;
  if (f.stats?.notice) return { state: 'degraded', tone: 'warn', pill: 'live (fallback)', message: f.stats.notice };
  // The passthrough stage tracks nothing and reports target 'none' with face false: no advice then.
  if (f.stats && !f.stats.face && f.stats.targetId !== 'none') {
    return { state: 'no-face', tone: 'warn', pill: 'no face', message: 'No face found in your camera picture. Face the camera, with your whole face in view and lit from the front.' };
  }
  return { state: 'live', tone: 'ok', pill: 'live', message: '' };
}
