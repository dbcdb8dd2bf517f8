/**
 * RTP health from mediasoup's own statistics, sampled when /metrics is
 * scraped: what the media path went through (loss, NACK repairs, keyframe
 * requests, the viewers' bandwidth estimate), by the role of the peer whose
 * stream it is.
 *
 * mediasoup reports cumulative counts per live stream; a stream's counts
 * vanish when it closes. The collector keeps the last value per stream and
 * adds only the increase to monotonic counters, so a scrape after a viewer
 * leaves never goes backwards.
 */
import type { types } from 'mediasoup';

/** What the collector reads from one peer. */
export interface RtpSource {
  role: string;
  producers: Iterable<types.Producer>;
  consumers: Iterable<types.Consumer>;
  transports: Iterable<types.WebRtcTransport>;
}

export type RtpCounterName = 'packets' | 'lost' | 'nacks' | 'retransmitted' | 'keyframeRequests';

export interface RtpSample {
  /** Increase since the last sample, per `${role}|${kind}|${side}` and counter. */
  increments: Map<string, Record<RtpCounterName, number>>;
  /** Current bitrate summed per `${role}|${kind}|${side}`, bit/s. */
  bitrates: Map<string, number>;
  /** The lowest bandwidth estimate among viewers' receive transports (bit/s), or null with no viewer. */
  viewerEstimateMin: number | null;
  /** The lowest score (0…10) among viewers' consumers, or null. */
  viewerScoreMin: number | null;
}

interface Last {
  values: Record<RtpCounterName, number>;
  seenAt: number;
}

type StreamStats = types.RtpStreamRecvStats | types.RtpStreamSendStats;

function counts(s: StreamStats): Record<RtpCounterName, number> {
  return {
    packets: s.packetCount,
    lost: Math.max(0, s.packetsLost),
    nacks: s.nackCount,
    retransmitted: s.packetsRetransmitted,
    keyframeRequests: s.pliCount + s.firCount,
  };
}

export class RtpStatsCollector {
  readonly #last = new Map<string, Last>();
  #sweep = 0;

  /**
   * Samples every producer's incoming streams (side "in": sent by that peer
   * to the SFU) and every consumer's outgoing stream (side "out": sent by the
   * SFU to that peer), and returns what grew since the last call.
   */
  async sample(sources: Iterable<RtpSource>): Promise<RtpSample> {
    const sweep = ++this.#sweep;
    const out: RtpSample = { increments: new Map(), bitrates: new Map(), viewerEstimateMin: null, viewerScoreMin: null };
    const jobs: Promise<void>[] = [];
    const add = (key: string, streamKey: string, s: StreamStats): void => {
      const now = counts(s);
      const prev = this.#last.get(streamKey);
      this.#last.set(streamKey, { values: now, seenAt: sweep });
      const inc = out.increments.get(key) ?? { packets: 0, lost: 0, nacks: 0, retransmitted: 0, keyframeRequests: 0 };
      for (const k of Object.keys(now) as RtpCounterName[]) inc[k] += Math.max(0, now[k] - (prev?.values[k] ?? 0));
      out.increments.set(key, inc);
      out.bitrates.set(key, (out.bitrates.get(key) ?? 0) + s.bitrate);
    };
    for (const src of sources) {
      for (const p of src.producers) {
        if (p.closed) continue;
        jobs.push(
          p.getStats().then(
            (stats) => {
              for (const s of stats) add(`${src.role}|${p.kind}|in`, `p:${p.id}:${s.ssrc}`, s);
            },
            () => undefined,
          ),
        );
      }
      for (const c of src.consumers) {
        if (c.closed) continue;
        jobs.push(
          c.getStats().then(
            (stats) => {
              for (const s of stats) {
                if (s.type !== 'outbound-rtp') continue;
                add(`${src.role}|${c.kind}|out`, `c:${c.id}:${s.ssrc}`, s);
                if (src.role === 'viewer') out.viewerScoreMin = Math.min(out.viewerScoreMin ?? 10, s.score);
              }
            },
            () => undefined,
          ),
        );
      }
      if (src.role !== 'viewer') continue;
      for (const t of src.transports) {
        if (t.closed || t.appData['direction'] !== 'recv') continue;
        jobs.push(
          t.getStats().then(
            (stats) => {
              for (const s of stats) {
                if (s.availableOutgoingBitrate !== undefined) out.viewerEstimateMin = Math.min(out.viewerEstimateMin ?? Infinity, s.availableOutgoingBitrate);
              }
            },
            () => undefined,
          ),
        );
      }
    }
    await Promise.all(jobs);
    // Streams not seen this time have closed: forget them (their counts are already in the totals).
    for (const [k, v] of this.#last) if (v.seenAt !== sweep) this.#last.delete(k);
    return out;
  }
}
