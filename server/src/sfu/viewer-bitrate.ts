/**
 * Fits single-layer synthesized video to the room's slowest viewer.
 *
 * mediasoup forwards one encoding to every viewer and cannot transcode: a
 * viewer on a 300 kbit/s link behind a 1.5 Mbit/s stream loses most packets
 * and sees a frozen picture. Simulcast solves it per viewer, but libwebrtc
 * only sends all layers for frames of 960×540 and up (video-publisher.ts),
 * so the default face-sized output is one layer. For that case the server
 * reads the SFU's send-side bandwidth estimate toward each viewer (transport-
 * cc feedback, mediasoup's availableOutgoingBitrate) once a second and caps
 * the reenactor's encoder just under the lowest one, as an SFU that passes
 * its subscribers' REMB back to the publisher does.
 *
 * The cap moves on a ladder of halvings (bitrateLadder), because each change
 * republishes the video (video-publisher.ts). The estimate can only grow a
 * little above what is sent (mediasoup probes up to the producer's declared
 * maximum, which is the cap), so the way back up is a probe: one rung after
 * the estimate has stayed clear of the cap for a while, taken back, with a
 * longer wait next time, if the link cannot carry it. Simulcast video is left
 * to the SFU's per-viewer layer selection.
 */
import type { types } from 'mediasoup';
import type { Room } from './room.ts';

/** The lowest rung: under it the picture is not worth sending. */
export const MIN_FOLLOW_BPS = 120_000;
/** Step down when the lowest estimate falls under this share of the current rung. */
export const DOWN_SHARE = 0.85;
/** …on this many readings in a row (one reading a second): one low reading is often CPU noise. */
export const DOWN_READINGS = 2;
/** Step up one rung after the lowest estimate has held this multiple of the current rung… */
export const UP_MARGIN = 1.25;
/** …for this long (doubled, up to MAX_UP_DWELL_MS, each time a step up has to be taken back). */
export const UP_DWELL_MS = 5000;
export const MAX_UP_DWELL_MS = 60_000;
/** A step down this soon after a step up means the step up failed. */
export const FAILED_UP_MS = 15_000;
/** After a change, the estimate is left this long to settle before it is read again. */
export const SETTLE_MS = 3000;

/** The bitrates a single layer is held to: the configured one, then halves down to MIN_FOLLOW_BPS. */
export function bitrateLadder(configured: number): number[] {
  const rungs = [configured];
  for (let b = configured / 2; b > MIN_FOLLOW_BPS && rungs.length < 5; b /= 2) rungs.push(Math.round(b));
  if (configured > MIN_FOLLOW_BPS) rungs.push(MIN_FOLLOW_BPS);
  return rungs;
}

export interface FollowState {
  /** Index into the ladder (0: the configured bitrate). */
  rung: number;
  changedAt: number;
  /** Since when the estimate has held UP_MARGIN over the rung, or null. */
  aboveSince: number | null;
  /** Readings in a row under DOWN_SHARE of the rung. */
  below: number;
  upDwellMs: number;
  lastUpAt: number | null;
}

export function initialFollowState(now: number): FollowState {
  return { rung: 0, changedAt: now, aboveSince: null, below: 0, upDwellMs: UP_DWELL_MS, lastUpAt: null };
}

/**
 * One decision: the state after seeing the viewers' estimates at `now`. Down is on the second
 * low reading in a row (to the highest rung the estimate carries), up follows a dwell (one rung, or more where the
 * estimate already carries them), and a step up that has
 * to be taken back doubles the dwell, so a link at its limit is probed less and less often.
 */
export function followStep(state: FollowState, estimates: readonly number[], now: number, rungs: readonly number[]): FollowState {
  if (estimates.length === 0) return state.rung === 0 ? state : { ...initialFollowState(now) };
  if (now - state.changedAt < SETTLE_MS) return state;
  const low = Math.min(...estimates);
  const current = rungs[state.rung]!;
  if (low < current * DOWN_SHARE) {
    if (state.below + 1 < DOWN_READINGS) return { ...state, aboveSince: null, below: state.below + 1 };
    let next = state.rung + 1;
    while (next < rungs.length - 1 && rungs[next]! > low * DOWN_SHARE) next++;
    if (next >= rungs.length) return { ...state, aboveSince: null, below: 0 };
    const failedUp = state.lastUpAt !== null && now - state.lastUpAt < FAILED_UP_MS;
    return { rung: next, changedAt: now, aboveSince: null, below: 0, upDwellMs: failedUp ? Math.min(MAX_UP_DWELL_MS, state.upDwellMs * 2) : state.upDwellMs, lastUpAt: state.lastUpAt };
  }
  if (state.rung > 0 && low >= current * UP_MARGIN) {
    const since = state.aboveSince ?? now;
    if (now - since >= state.upDwellMs) {
      // As far up as the estimate already carries (it can run ahead of what is sent, e.g. while
      // mediasoup probes), at least one rung.
      let next = state.rung - 1;
      while (next > 0 && rungs[next - 1]! * UP_MARGIN <= low) next--;
      return { rung: next, changedAt: now, aboveSince: null, below: 0, upDwellMs: state.upDwellMs, lastUpAt: now };
    }
    return state.aboveSince === null || state.below ? { ...state, aboveSince: since, below: 0 } : state;
  }
  // Holding steady: a link that has carried its rung for a while earns back the short dwell.
  const calm = state.lastUpAt === null || now - state.lastUpAt > MAX_UP_DWELL_MS;
  return { ...state, aboveSince: null, below: 0, upDwellMs: calm ? UP_DWELL_MS : state.upDwellMs };
}

function connected(t: types.WebRtcTransport): boolean {
  return !t.closed && (t.iceState === 'connected' || t.iceState === 'completed');
}

/** The SFU's current estimates toward the viewers consuming `producer`, one per receive transport. */
export async function viewerEstimates(room: Room, producer: types.Producer): Promise<number[]> {
  const jobs: Promise<number | undefined>[] = [];
  for (const peer of room.peers.values()) {
    if (peer.role !== 'viewer') continue;
    const watching = [...peer.consumers.values()].some((c) => !c.closed && c.producerId === producer.id);
    if (!watching) continue;
    for (const t of peer.transports.values()) {
      if (t.appData['direction'] !== 'recv' || !connected(t)) continue;
      jobs.push(t.getStats().then((s) => s[0]?.availableOutgoingBitrate, () => undefined));
    }
  }
  return (await Promise.all(jobs)).filter((v): v is number => typeof v === 'number' && v > 0);
}

export interface FollowerDeps {
  rooms: () => Iterable<[string, Room]>;
  configured: number;
  /** Applies a cap (bit/s) to a room's running session; `direction` says which way it moved. */
  apply: (roomId: string, bps: number, direction: 'down' | 'up') => Promise<void>;
  intervalMs?: number;
}

export class ViewerBitrateFollower {
  readonly #deps: FollowerDeps;
  readonly #rungs: number[];
  readonly #states = new Map<string, FollowState>();
  readonly #timer: NodeJS.Timeout;
  #busy = false;

  constructor(deps: FollowerDeps) {
    this.#deps = deps;
    this.#rungs = bitrateLadder(deps.configured);
    this.#timer = setInterval(() => void this.tick(), deps.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** The bitrate a room's single-layer video is held to now. */
  ceiling(roomId: string): number {
    return this.#rungs[this.#states.get(roomId)?.rung ?? 0]!;
  }

  async tick(now = performance.now()): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const seen = new Set<string>();
      for (const [roomId, room] of this.#deps.rooms()) {
        const producer = room.synthesizedVideo;
        if (!producer || producer.closed || producer.rtpParameters.encodings?.length !== 1) continue;
        seen.add(roomId);
        const state = this.#states.get(roomId) ?? initialFollowState(now);
        const next = followStep(state, await viewerEstimates(room, producer), now, this.#rungs);
        if (next.rung !== state.rung) {
          try {
            await this.#deps.apply(roomId, this.#rungs[next.rung]!, next.rung > state.rung ? 'down' : 'up');
          } catch {
            // The session is not running (starting, restarting): decide again on the next tick.
            continue;
          }
        }
        this.#states.set(roomId, next);
      }
      for (const id of this.#states.keys()) if (!seen.has(id)) this.#states.delete(id);
    } finally {
      this.#busy = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
