/**
 * Live statistics: the server's 1 Hz sessionStats (fps in/out, server-added
 * latency, degrade level, drops, face) merged with the browser's own WebRTC
 * stats (send/receive fps, encode, decode, jitter buffer, round trip), and a
 * glass-to-glass estimate built from them:
 *
 *   capture (≈ one camera frame) + encode + RTT_up/2 + server p50
 *     + RTT_down/2 + jitter buffer + decode + render (≈ one display frame)
 *
 * In privacy mode on-device tracking takes the place of encoding.
 *
 * The estimate leaves out the camera's own pipeline and the display's scan-out,
 * which no API reports; docs/client.md compares it with a measured figure.
 */
import type { types as msc } from 'mediasoup-client';
import type { SessionStatsData } from '../../shared/protocol.ts';

export interface MediaSample {
  /** What the page sends: camera video, or landmarks only (privacy mode). */
  mode?: string;
  sendFps?: number;
  /** Send transport's upstream rate, kbit/s (media or data, with all headers). */
  upKbps?: number;
  /** Privacy mode: on-device tracking per frame, ms (it takes the place of encoding). */
  trackMs?: number;
  recvFps?: number;
  encodeMs?: number;
  decodeMs?: number;
  jitterBufferMs?: number;
  rttUpMs?: number;
  rttDownMs?: number;
  framesDropped?: number;
  width?: number;
  height?: number;
}

interface Counters {
  encodeTime?: number;
  framesEncoded?: number;
  decodeTime?: number;
  framesDecoded?: number;
  jitterDelay?: number;
  jitterEmitted?: number;
}

const CAPTURE_MS = 1000 / 30;
const RENDER_MS = 1000 / 60;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function rtt(report: RTCStatsReport): number | undefined {
  let out: number | undefined;
  report.forEach((s: Record<string, unknown>) => {
    if (s['type'] === 'candidate-pair' && s['state'] === 'succeeded' && (s['nominated'] === true || out === undefined)) {
      const r = num(s['currentRoundTripTime']);
      if (r !== undefined) out = r * 1000;
    }
  });
  return out;
}

/** Per-interval average of a cumulative seconds counter over a cumulative count, in ms. */
function perFrameMs(now: number | undefined, prev: number | undefined, n: number | undefined, nPrev: number | undefined): number | undefined {
  if (now === undefined || prev === undefined || n === undefined || nPrev === undefined || n <= nPrev) return undefined;
  return ((now - prev) / (n - nPrev)) * 1000;
}

export function glassToGlassEstimate(m: MediaSample, serverMs: number | undefined): number | undefined {
  if (m.jitterBufferMs === undefined || m.decodeMs === undefined || serverMs === undefined) return undefined;
  return CAPTURE_MS + (m.trackMs ?? m.encodeMs ?? 0) + (m.rttUpMs ?? 0) / 2 + serverMs + (m.rttDownMs ?? 0) / 2 + m.jitterBufferMs + m.decodeMs + RENDER_MS;
}

export class MediaStatsSampler {
  #prev: Counters = {};

  /** Samples the producer (send side, optional) and the consumer (receive side). */
  async sample(producer: msc.Producer | undefined, consumer: msc.Consumer | undefined): Promise<MediaSample> {
    const out: MediaSample = {};
    const cur: Counters = {};
    if (producer && !producer.closed) {
      const r = await producer.getStats().catch(() => undefined);
      r?.forEach((s: Record<string, unknown>) => {
        if (s['type'] !== 'outbound-rtp') return;
        out.sendFps = num(s['framesPerSecond']) ?? out.sendFps;
        cur.encodeTime = num(s['totalEncodeTime']);
        cur.framesEncoded = num(s['framesEncoded']);
      });
      if (r) out.rttUpMs = rtt(r);
    }
    if (consumer && !consumer.closed) {
      const r = await consumer.getStats().catch(() => undefined);
      r?.forEach((s: Record<string, unknown>) => {
        if (s['type'] !== 'inbound-rtp') return;
        out.recvFps = num(s['framesPerSecond']) ?? 0;
        out.framesDropped = num(s['framesDropped']);
        out.width = num(s['frameWidth']);
        out.height = num(s['frameHeight']);
        cur.decodeTime = num(s['totalDecodeTime']);
        cur.framesDecoded = num(s['framesDecoded']);
        cur.jitterDelay = num(s['jitterBufferDelay']);
        cur.jitterEmitted = num(s['jitterBufferEmittedCount']);
      });
      if (r) out.rttDownMs = rtt(r);
    }
    const p = this.#prev;
    out.encodeMs = perFrameMs(cur.encodeTime, p.encodeTime, cur.framesEncoded, p.framesEncoded);
    out.decodeMs = perFrameMs(cur.decodeTime, p.decodeTime, cur.framesDecoded, p.framesDecoded);
    out.jitterBufferMs = perFrameMs(cur.jitterDelay, p.jitterDelay, cur.jitterEmitted, p.jitterEmitted);
    this.#prev = cur;
    return out;
  }
}

const fmt = (v: number | undefined, digits = 0, unit = ''): string => (v === undefined ? '—' : `${v.toFixed(digits)}${unit}`);

/** Renders stats rows into a <dl>; each value also lands in a data-* attribute for tests and tooling. */
export class StatsPanel {
  readonly #root: HTMLElement;
  readonly #rows = new Map<string, HTMLElement>();
  #server: SessionStatsData | undefined;
  #serverAt = 0;

  constructor(root: HTMLElement, rows: [key: string, label: string][]) {
    this.#root = root;
    for (const [key, label] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = '—';
      dd.dataset['stat'] = key;
      const group = document.createElement('div');
      group.append(dt, dd);
      root.append(group);
      this.#rows.set(key, dd);
    }
  }

  /** The last server stats, or undefined when none came within 3 s. */
  get server(): SessionStatsData | undefined {
    return performance.now() - this.#serverAt < 3000 ? this.#server : undefined;
  }

  setServer(s: SessionStatsData): void {
    this.#server = s;
    this.#serverAt = performance.now();
  }

  render(m: MediaSample): void {
    const s = this.server;
    const drops = s ? Object.entries(s.drops).filter(([, n]) => n > 0) : [];
    const g2g = glassToGlassEstimate(m, s?.serverMsP50);
    const values: Record<string, string> = {
      fpsIn: s ? fmt(s.fpsIn, 1) : '—',
      fpsOut: s ? fmt(s.fpsOut, 1) : '—',
      mode: m.mode ?? '—',
      sendFps: fmt(m.sendFps, 0),
      upstream: fmt(m.upKbps, 0, ' kbit/s'),
      tracking: fmt(m.trackMs, 1, ' ms'),
      recvFps: fmt(m.recvFps, 0),
      server: s ? `${s.serverMsP50.toFixed(0)} / ${s.serverMsP95.toFixed(0)} ms` : '—',
      network: m.rttUpMs !== undefined || m.rttDownMs !== undefined ? `${fmt(m.rttUpMs, 0)} / ${fmt(m.rttDownMs, 0)} ms` : '—',
      jitter: fmt(m.jitterBufferMs, 0, ' ms'),
      decode: fmt(m.decodeMs, 1, ' ms'),
      g2g: g2g === undefined ? '—' : `≈ ${g2g.toFixed(0)} ms`,
      degrade: s ? (['full quality', 'reduced size', 'half frame rate'][s.degradeLevel] ?? `level ${s.degradeLevel}`) : '—',
      drops: s ? (drops.length ? drops.map(([k, n]) => `${k} ${n}`).join(', ') : 'none') : '—',
      size: m.width && m.height ? `${m.width}×${m.height}` : '—',
      voice: s?.audioDelayMs !== undefined ? `held ${s.audioDelayMs.toFixed(0)} ms to match the face` : 'no microphone',
    };
    for (const [key, dd] of this.#rows) dd.textContent = values[key] ?? '—';
    const data = this.#root.dataset;
    if (g2g !== undefined) data['g2g'] = g2g.toFixed(1);
    if (m.recvFps !== undefined) data['recvFps'] = String(m.recvFps);
    if (m.upKbps !== undefined) data['upKbps'] = m.upKbps.toFixed(1);
    if (m.trackMs !== undefined) data['trackMs'] = m.trackMs.toFixed(1);
    if (m.jitterBufferMs !== undefined) data['jitterMs'] = m.jitterBufferMs.toFixed(1);
    if (s) {
      data['fpsOut'] = String(s.fpsOut);
      data['degrade'] = String(s.degradeLevel);
    }
  }
}
