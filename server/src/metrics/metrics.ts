/**
 * The only module that imports prom-client. Every metric is prefixed
 * `reenact_`, histograms have explicit buckets, and units are in the names.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RtpStatsCollector, type RtpCounterName, type RtpSource } from './rtp-stats.ts';

const latencyBuckets = [0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1];

export class Metrics {
  readonly registry = new Registry();

  readonly rooms = new Gauge({ name: 'reenact_rooms', help: 'Open rooms', registers: [this.registry] });
  readonly peers = new Gauge({ name: 'reenact_peers', help: 'Joined peers by role', labelNames: ['role'] as const, registers: [this.registry] });
  readonly sessions = new Gauge({ name: 'reenact_sessions', help: 'Reenactor sessions by state', labelNames: ['state'] as const, registers: [this.registry] });
  readonly signallingErrors = new Counter({
    name: 'reenact_signalling_errors_total',
    help: 'Refused signalling requests by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly workerDeaths = new Counter({ name: 'reenact_mediasoup_worker_deaths_total', help: 'mediasoup workers that died', registers: [this.registry] });
  readonly placementSeconds = new Histogram({
    name: 'reenact_cluster_placement_seconds',
    help: 'Cluster mode: time to place a session on a reenactor host (one Redis script)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 1],
    registers: [this.registry],
  });
  readonly clusterFailovers = new Counter({ name: 'reenact_cluster_failovers_total', help: 'Cluster mode: sessions moved off a reenactor host whose heartbeat expired', registers: [this.registry] });
  readonly clusterSlots = new Gauge({ name: 'reenact_cluster_slots', help: 'Cluster mode: reenactor host slots, by state (free, used), over serving hosts', labelNames: ['state'] as const, registers: [this.registry] });
  readonly clusterWaiting = new Gauge({ name: 'reenact_cluster_sessions_waiting', help: 'Cluster mode: sessions waiting for a free slot', registers: [this.registry] });
  readonly reenactorRestarts = new Counter({
    name: 'reenact_reenactor_restarts_total',
    help: 'Reenactor child processes restarted after dying or hanging',
    registers: [this.registry],
  });
  readonly framesIn = new Counter({ name: 'reenact_frames_in_total', help: 'Frames received by reenactor sessions', registers: [this.registry] });
  readonly framesOut = new Counter({ name: 'reenact_frames_out_total', help: 'Frames published by reenactor sessions', registers: [this.registry] });
  readonly framesDropped = new Counter({
    name: 'reenact_frames_dropped_total',
    help: 'Frames dropped by reason (superseded: latest-frame slot replaced it; stale: older than budget; skipped: degrade; error)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly stageSeconds = new Histogram({
    name: 'reenact_stage_seconds',
    help: 'Per-stage processing time per frame',
    labelNames: ['stage'] as const,
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly serverLatencySeconds = new Histogram({
    name: 'reenact_server_added_latency_seconds',
    help: 'Time from a frame arriving at the reenactor to its output being handed to the encoder',
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly audioFrames = new Counter({
    name: 'reenact_audio_frames_total',
    help: 'Actor voice through reenactor sessions, in 10 ms frames: in (from the microphone), out (to the synthesized audio track)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly audioAdjustments = new Counter({
    name: 'reenact_audio_adjustments_total',
    help: 'Voice delay changes, in 10 ms frames: inserted (silence, to lengthen the delay) or dropped (to shorten it)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly audioDelaySeconds = new Histogram({
    name: 'reenact_audio_delay_seconds',
    help: 'Delay applied to the actor voice, per session, sampled once a heartbeat (it follows the video arrival-to-encoder time)',
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly audioSyncErrorSeconds = new Histogram({
    name: 'reenact_audio_sync_error_seconds',
    help: 'Applied voice delay less the video delay it follows, absolute, per session and heartbeat (the offset the server knows of)',
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly fps = new Gauge({ name: 'reenact_fps', help: 'Input and output frame rate summed over sessions', labelNames: ['direction'] as const, registers: [this.registry] });
  readonly degradeLevel = new Gauge({ name: 'reenact_degrade_level', help: 'Highest degrade level across sessions (0 = none)', registers: [this.registry] });
  readonly runnerQueueDepth = new Gauge({ name: 'reenact_runner_queue_depth', help: 'Inference requests waiting in runners', registers: [this.registry] });
  readonly eventLoopLagSeconds = new Gauge({
    name: 'reenact_event_loop_lag_seconds',
    help: 'Event-loop lag (p99 over the last interval) by process',
    labelNames: ['process'] as const,
    registers: [this.registry],
  });
  readonly childCpuSeconds = new Gauge({
    name: 'reenact_child_cpu_seconds',
    help: 'CPU time consumed by child processes (reenactors)',
    labelNames: ['process'] as const,
    registers: [this.registry],
  });
  readonly childRssBytes = new Gauge({ name: 'reenact_child_rss_bytes', help: 'Resident memory of child processes', labelNames: ['process'] as const, registers: [this.registry] });
  /** kind: heap_used, heap_total, external (of which array_buffers); RSS less heap_total and external is native memory. */
  readonly childMemoryBytes = new Gauge({ name: 'reenact_child_memory_bytes', help: 'Memory of child processes by kind (V8 heap, external buffers)', labelNames: ['process', 'kind'] as const, registers: [this.registry] });

  /** The peers whose RTP streams are sampled on each scrape; set by the server once its rooms exist. */
  rtpSources: () => Iterable<RtpSource> = () => [];
  readonly #rtp = new RtpStatsCollector();
  #rtpPending: Promise<void> | null = null;
  readonly #rtpCollect = { collect: (): Promise<void> => this.#refreshRtp() };
  readonly #rtpLabels = ['role', 'kind', 'side'] as const;
  readonly rtpCounters: Record<RtpCounterName, Counter<'role' | 'kind' | 'side'>> = {
    packets: this.#rtpCounter('reenact_rtp_packets_total', 'RTP packets by the role of the peer whose stream it is and side (in: that peer to the SFU; out: the SFU to that peer)'),
    lost: this.#rtpCounter('reenact_rtp_packets_lost_total', 'RTP packets lost (in: seen missing by the SFU; out: reported missing by the receiving peer)'),
    nacks: this.#rtpCounter('reenact_rtp_nacks_total', 'NACKs (in: sent by the SFU to the sending peer; out: received from the receiving peer)'),
    retransmitted: this.#rtpCounter('reenact_rtp_retransmitted_packets_total', 'RTP packets retransmitted after a NACK (in: by the sending peer; out: by the SFU)'),
    keyframeRequests: this.#rtpCounter('reenact_rtp_keyframe_requests_total', 'PLI and FIR keyframe requests (in: sent to the sending peer; out: received from the receiving peer)'),
  };
  readonly rtpBitrate = new Gauge({
    name: 'reenact_rtp_bitrate_bps',
    help: 'Current RTP bitrate summed over streams, by role, kind and side',
    labelNames: this.#rtpLabels,
    registers: [this.registry],
    ...this.#rtpCollect,
  });
  readonly viewerEstimateMin = new Gauge({
    name: 'reenact_viewer_bandwidth_estimate_min_bps',
    help: "The lowest of the SFU's bandwidth estimates toward viewers (absent with no viewer)",
    registers: [this.registry],
    ...this.#rtpCollect,
  });
  readonly inferenceProvider = new Gauge({
    name: 'reenact_inference_provider_info',
    help: 'The execution provider the reenactor pipeline runs its face models on (1 for the one in use)',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  readonly bitrateLadderSteps = new Counter({
    name: 'reenact_bitrate_ladder_steps_total',
    help: "Steps of single-layer synthesized video's bitrate ladder, following the slowest viewer's estimate (down) or probing back (up)",
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly viewerScoreMin = new Gauge({
    name: 'reenact_viewer_score_min',
    help: "The lowest mediasoup score (0-10) of a viewer's stream: 10 is clean, low means loss (absent with no viewer)",
    registers: [this.registry],
    ...this.#rtpCollect,
  });

  constructor() {
    // process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_* for the main process.
    collectDefaultMetrics({ register: this.registry, prefix: 'reenact_' });
  }

  #rtpCounter(name: string, help: string): Counter<'role' | 'kind' | 'side'> {
    return new Counter({ name, help, labelNames: this.#rtpLabels, registers: [this.registry], ...this.#rtpCollect });
  }

  /** One mediasoup sample per scrape, shared by every RTP metric's collect. */
  #refreshRtp(): Promise<void> {
    this.#rtpPending ??= this.#rtp
      .sample(this.rtpSources())
      .then((s) => {
        for (const [key, inc] of s.increments) {
          const [role = '', kind = '', side = ''] = key.split('|');
          for (const name of Object.keys(inc) as RtpCounterName[]) if (inc[name] > 0) this.rtpCounters[name].inc({ role, kind, side }, inc[name]);
        }
        this.rtpBitrate.reset();
        for (const [key, bps] of s.bitrates) {
          const [role = '', kind = '', side = ''] = key.split('|');
          this.rtpBitrate.set({ role, kind, side }, bps);
        }
        if (s.viewerEstimateMin === null) this.viewerEstimateMin.reset();
        else this.viewerEstimateMin.set(s.viewerEstimateMin);
        if (s.viewerScoreMin === null) this.viewerScoreMin.reset();
        else this.viewerScoreMin.set(s.viewerScoreMin);
      })
      .finally(() => {
        this.#rtpPending = null;
      });
    return this.#rtpPending;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
