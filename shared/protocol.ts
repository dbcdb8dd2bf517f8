/**
 * The signalling protocol between browser/Node peers and the server, over
 * socket.io. One typed union of requests (client → server, answered through
 * the socket.io ack) and one of notifications (server → client).
 *
 * Every inbound request is validated against `requestSchema` at the socket
 * boundary: TypeScript types are not validation.
 */
import { z } from 'zod';
import type { ErrorCode } from './errors.ts';

export const Roles = ['actor', 'viewer', 'reenactor'] as const;
export type Role = (typeof Roles)[number];

/** Largest accepted request, as JSON text. Anything larger is refused with E_BAD_REQUEST. */
export const MAX_REQUEST_BYTES = 64 * 1024;

const id = z.string().min(1).max(128);
const shortText = z.string().max(256);
const anyRecord = z.record(z.string().max(128), z.unknown());

const fingerprint = z.object({ algorithm: z.string().max(32), value: z.string().max(256) });
export const dtlsParametersSchema = z.object({
  role: z.enum(['auto', 'client', 'server']).optional(),
  fingerprints: z.array(fingerprint).min(1).max(8),
});

const codec = z
  .object({
    mimeType: z.string().max(64),
    payloadType: z.number().int().min(0).max(127),
    clockRate: z.number().int().positive(),
    channels: z.number().int().positive().max(8).optional(),
    parameters: anyRecord.optional(),
    rtcpFeedback: z.array(z.object({ type: z.string().max(32), parameter: z.string().max(32).optional() })).max(16).optional(),
  })
  .passthrough();

export const rtpParametersSchema = z
  .object({
    mid: z.string().max(32).optional(),
    codecs: z.array(codec).min(1).max(16),
    headerExtensions: z.array(anyRecord).max(32).optional(),
    encodings: z.array(anyRecord).max(8).optional(),
    rtcp: anyRecord.optional(),
  })
  .passthrough();

export const rtpCapabilitiesSchema = z
  .object({
    codecs: z.array(anyRecord).max(64).optional(),
    headerExtensions: z.array(anyRecord).max(64).optional(),
  })
  .passthrough();

/**
 * Labels the server gives producers. The actor publishes "camera" (video) and
 * "microphone" (audio); the reenactor publishes "synthesized", a video and an
 * audio producer from one peer (the voice delayed to match the face).
 */
/**
 * What the synthesized video shows (docs/rendering.md, "Output profiles"): the face square, the
 * target's whole picture with the face pasted back, or a fixed canvas for calls framed on the face.
 */
export const OUTPUT_PROFILES = ['face', 'frame', '720p', '1080p', '720x1280'] as const;
export type OutputProfile = (typeof OUTPUT_PROFILES)[number];

export function isOutputProfile(v: unknown): v is OutputProfile {
  return typeof v === 'string' && (OUTPUT_PROFILES as readonly string[]).includes(v);
}

export const ProducerLabels = ['camera', 'microphone', 'synthesized'] as const;
export type ProducerLabel = (typeof ProducerLabels)[number];

/** The media kind each label may carry ("synthesized" carries both). */
export function labelAllows(label: ProducerLabel, kind: 'audio' | 'video'): boolean {
  if (label === 'camera') return kind === 'video';
  if (label === 'microphone') return kind === 'audio';
  return true;
}

/** Labels of data producers: "tracks" carries privacy mode's landmarks (shared/track-wire.ts). */
export const DataLabels = ['tracks'] as const;
export type DataLabel = (typeof DataLabels)[number];

export const sctpStreamParametersSchema = z
  .object({
    streamId: z.number().int().min(0).max(65534),
    ordered: z.boolean().optional(),
    maxPacketLifeTime: z.number().int().min(0).max(60_000).optional(),
    maxRetransmits: z.number().int().min(0).max(100).optional(),
  })
  .strict();

/** The data channel sub-protocol of a "tracks" channel: shared/track-wire.ts, version 1. */
export const TRACKS_PROTOCOL = 'reenact-tracks-1';

/** Keeps only the SCTP stream fields the server accepts (mediasoup-client adds others, e.g. "label"). */
export function pickStreamParameters(p: { streamId?: number; ordered?: boolean; maxPacketLifeTime?: number; maxRetransmits?: number }): z.infer<typeof sctpStreamParametersSchema> {
  const out: z.infer<typeof sctpStreamParametersSchema> = { streamId: p.streamId ?? -1 };
  if (p.ordered !== undefined) out.ordered = p.ordered;
  if (p.maxPacketLifeTime !== undefined) out.maxPacketLifeTime = p.maxPacketLifeTime;
  if (p.maxRetransmits !== undefined) out.maxRetransmits = p.maxRetransmits;
  return out;
}

export const requestSchema = z.discriminatedUnion('method', [
  z.object({
    method: z.literal('join'),
    data: z.object({ token: z.string().min(1).max(2048), displayName: shortText.optional() }),
  }),
  z.object({ method: z.literal('createWebRtcTransport'), data: z.object({ direction: z.enum(['send', 'recv']) }) }),
  z.object({ method: z.literal('connectWebRtcTransport'), data: z.object({ transportId: id, dtlsParameters: dtlsParametersSchema }) }),
  z.object({
    method: z.literal('produce'),
    data: z.object({
      transportId: id,
      kind: z.enum(['audio', 'video']),
      rtpParameters: rtpParametersSchema,
      label: z.enum(ProducerLabels),
    }),
  }),
  z.object({ method: z.literal('closeProducer'), data: z.object({ producerId: id }) }),
  // Privacy mode: the actor sends landmarks over an SCTP data channel instead of camera video.
  z.object({
    method: z.literal('produceData'),
    data: z.object({ transportId: id, sctpStreamParameters: sctpStreamParametersSchema, label: z.enum(DataLabels), protocol: shortText.optional() }),
  }),
  // Only the reenactor consumes an actor's tracks.
  z.object({ method: z.literal('consumeData'), data: z.object({ transportId: id, dataProducerId: id }) }),
  z.object({ method: z.literal('consume'), data: z.object({ transportId: id, producerId: id, rtpCapabilities: rtpCapabilitiesSchema }) }),
  z.object({ method: z.literal('resumeConsumer'), data: z.object({ consumerId: id }) }),
  /** Ask the sender of one of this peer's video consumers for a keyframe (a receiver that stalled); throttled per consumer. */
  z.object({ method: z.literal('requestKeyFrame'), data: z.object({ consumerId: id }).strict() }),
  z.object({ method: z.literal('closeConsumer'), data: z.object({ consumerId: id }).strict() }),
  /** A simulcast consumer's highest spatial layer (0 = quarter size); the SFU still drops lower when the link needs it. */
  z.object({ method: z.literal('setPreferredLayers'), data: z.object({ consumerId: id, spatialLayer: z.number().int().min(0).max(2) }).strict() }),
  z.object({ method: z.literal('leave'), data: z.object({}).strict() }),
  // Session controls (actor only): take effect on the room's reenactor session.
  z.object({ method: z.literal('listTargets'), data: z.object({}).strict() }),
  z.object({ method: z.literal('setTarget'), data: z.object({ targetId: id }) }),
  z.object({ method: z.literal('resetNeutral'), data: z.object({}).strict() }),
  z.object({ method: z.literal('setOptions'), data: z.object({ sideBySide: z.boolean().optional(), lipZero: z.boolean().optional(), output: z.enum(OUTPUT_PROFILES).optional() }).strict() }),
]);

export type ClientRequest = z.infer<typeof requestSchema>;
export type RequestMethod = ClientRequest['method'];
export type RequestData<M extends RequestMethod> = Extract<ClientRequest, { method: M }>['data'];

export interface ProducerInfo {
  producerId: string;
  peerId: string;
  kind: 'audio' | 'video';
  label: ProducerLabel;
}

export interface TransportInfo {
  id: string;
  iceParameters: unknown;
  iceCandidates: unknown[];
  dtlsParameters: unknown;
  /** Set when the transport carries SCTP (data channels). */
  sctpParameters?: unknown;
}

export interface DataConsumerInfo {
  id: string;
  dataProducerId: string;
  sctpStreamParameters: unknown;
  label: string;
  protocol: string;
}

export interface ConsumerInfo {
  id: string;
  producerId: string;
  kind: 'audio' | 'video';
  rtpParameters: unknown;
}

/** What each request answers with, on success. */
export interface ResponseData {
  join: { peerId: string; roomId: string; role: Role; routerRtpCapabilities: unknown; producers: ProducerInfo[]; measurement: boolean };
  createWebRtcTransport: TransportInfo;
  connectWebRtcTransport: Record<string, never>;
  produce: { producerId: string };
  closeProducer: Record<string, never>;
  produceData: { dataProducerId: string };
  consumeData: DataConsumerInfo;
  consume: ConsumerInfo;
  resumeConsumer: Record<string, never>;
  /** `producerLive`: the SFU is receiving the producer's media now (its bitrate is above zero). */
  requestKeyFrame: { sent: boolean; producerLive: boolean };
  closeConsumer: Record<string, never>;
  setPreferredLayers: Record<string, never>;
  leave: Record<string, never>;
  listTargets: { targets: TargetInfo[]; current: string };
  setTarget: { targetId: string };
  resetNeutral: Record<string, never>;
  setOptions: SessionOptions;
}

/** A face the reenactor can render: a bundled demo portrait or clip, or an upload. */
export interface TargetInfo {
  id: string;
  name: string;
  kind: 'image' | 'clip';
  source: 'bundled' | 'upload';
  /** URL of a small JPEG preview, served by the server. */
  thumbnailUrl: string;
}

export interface SessionOptions {
  /** Output shows driving | synthesized side by side. */
  sideBySide: boolean;
  /**
   * Lip zero: a target painted with parted lips shows them shut while the actor
   * rests with a closed mouth (the renderer's RetargetParams.lipZero). The
   * server's REENACT_LIP_ZERO sets the default for new rooms.
   */
  lipZero: boolean;
  /** Output profile; side by side always shows the face square. REENACT_OUTPUT sets the default. */
  output: OutputProfile;
}

/** Once a second, to the room, while a session runs. */
export interface SessionStatsData {
  fpsIn: number;
  fpsOut: number;
  /** Server-added latency over the last second, ms. */
  serverMsP50: number;
  serverMsP95: number;
  /** 0 = full quality; 1 = lower render size; 2 = every other frame skipped. */
  degradeLevel: number;
  /** Drops over the last second, by reason. */
  drops: Record<string, number>;
  /** A face was tracked in the last frame. */
  face: boolean;
  /** Set while the session shows passthrough video because the stage failed. */
  notice?: string;
  targetId: string;
  /** The delay the actor's voice is held for, ms, so it plays with the face (absent without a microphone). */
  audioDelayMs?: number;
}

export type Response<M extends RequestMethod = RequestMethod> =
  | { ok: true; data: ResponseData[M] }
  | { ok: false; error: { code: ErrorCode; message: string } };

/** Reenactor session states as seen by clients in a room. */
/** 'waiting': in a cluster, every reenactor host is full; the session starts when a slot frees. */
export type SessionState = 'starting' | 'waiting' | 'running' | 'restarting' | 'stopped' | 'failed';

export type Notification =
  | { method: 'newProducer'; data: ProducerInfo }
  | { method: 'producerClosed'; data: { producerId: string } }
  | { method: 'peerLeft'; data: { peerId: string } }
  | { method: 'sessionStatus'; data: { state: SessionState; code?: ErrorCode; message?: string } }
  | { method: 'roomClosed'; data: { code: ErrorCode; message: string } }
  | { method: 'sessionStats'; data: SessionStatsData }
  | { method: 'targetChanged'; data: { targetId: string } }
  | { method: 'degradeChanged'; data: { level: number; reason: string } }
  /** The server is shutting down: sessions may finish for up to graceMs, then the room closes. */
  | { method: 'serverDraining'; data: { graceMs: number } };

/** socket.io typing: the same interfaces go to the server's Server<> and the clients' Socket<>. */
export interface ClientToServerEvents {
  request: (req: ClientRequest, ack: (res: Response) => void) => void;
}

export interface ServerToClientEvents {
  notification: (n: Notification) => void;
}

/** The socket.io path, shared by server and clients. */
export const SIGNALLING_PATH = '/signal';
