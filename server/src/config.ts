/**
 * The server's one configuration type. This is the only module that reads
 * process.env; everything else receives a frozen Config. Every option has an
 * embedded default so `npm start` works with no configuration at all.
 *
 * All times are in milliseconds unless the name says otherwise.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { OUTPUT_PROFILES } from '../../shared/protocol.ts';

const configSchema = z.object({
  /** HTTP/WebSocket listen address and port. REENACT_HOST, REENACT_PORT. */
  host: z.string().default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** IP announced in ICE candidates; defaults to the listen host. REENACT_ANNOUNCED_IP. */
  announcedIp: z.string().optional(),
  /** UDP/TCP port range for WebRTC. REENACT_RTC_MIN_PORT, REENACT_RTC_MAX_PORT. */
  rtcMinPort: z.coerce.number().int().min(1024).max(65535).default(40000),
  rtcMaxPort: z.coerce.number().int().min(1024).max(65535).default(49999),
  /** mediasoup workers; default one per core. REENACT_WORKERS. */
  workers: z.coerce.number().int().min(1).max(64).default(availableParallelism()),
  /** HMAC secret for room tokens; random per process when unset. REENACT_TOKEN_SECRET. */
  tokenSecret: z.string().min(16).default(() => randomBytes(32).toString('hex')),
  /** Token lifetime. REENACT_TOKEN_TTL_MS. */
  tokenTtlMs: z.coerce.number().int().positive().default(6 * 3600_000),
  /**
   * Hand out tokens from GET /api/token to any page that asks (the embedded
   * default for a single-user box). Unset, it is on only when the server
   * listens on loopback (127.0.0.0/8, ::1, localhost): anyone who reaches the
   * port could otherwise become the actor of any room. Deployments mint tokens
   * in their own backend and hand them to the pages (`?token=`).
   * REENACT_AUTO_TOKENS=0|1; 1 on a public address is honoured, with a warning.
   */
  autoTokens: z.coerce.boolean().optional(),
  /** Sessions per reenactor child process. REENACT_SESSIONS_PER_REENACTOR. */
  sessionsPerReenactor: z.coerce.number().int().min(1).max(64).default(4),
  /** Server-wide session limit; /healthz says 503 at or over it. REENACT_MAX_SESSIONS. */
  maxSessions: z.coerce.number().int().min(1).default(8),
  /** Copy the input frame-id stamp into output frames for latency measurement. REENACT_MEASUREMENT=0|1. */
  measurement: z.coerce.boolean().default(false),
  /** Reenactor processing stage: 'reenact' (track + render onto the target) or 'passthrough'. REENACT_STAGE. */
  stage: z.enum(['passthrough', 'reenact']).default('reenact'),
  /**
   * Landmark model of the live pipeline: 'mesh' (468 points, the faster one, and what privacy
   * mode's browser sends) or 'attention' (478 points: true blinks, irises for gaze; ~1.3× the
   * tracking time). Offline tools use the attention model. REENACT_TRACKER_MODEL.
   */
  trackerModel: z.enum(['mesh', 'attention']).default('mesh'),
  /**
   * Lip zero: a target whose own lips are parted shows them shut while the actor rests with a
   * closed mouth (docs/rendering.md). REENACT_LIP_ZERO=0|1.
   */
  lipZero: z.coerce.boolean().default(true),
  /** Output profile of new rooms (face, frame, 720p, 1080p, 720x1280; docs/rendering.md). REENACT_OUTPUT. */
  output: z.enum(OUTPUT_PROFILES).default('face'),
  /** Output size of the rendered face (square), pixels. REENACT_RENDER_SIZE. */
  renderSize: z.coerce.number().int().min(128).max(1024).multipleOf(16).default(256),
  /** Per-frame server budget: sessions that keep missing it degrade; frames that waited twice it are dropped. REENACT_BUDGET_MS. */
  budgetMs: z.coerce.number().int().min(5).max(1000).default(50),
  /** Gallery id of the target a new session starts with. REENACT_DEFAULT_TARGET. */
  defaultTarget: z.string().default('s1'),
  /**
   * Uploaded faces are deleted this many hours after they were uploaded (with their enrollments);
   * 0 keeps them until their room's actor deletes them. REENACT_UPLOAD_TTL_HOURS.
   */
  uploadTtlHours: z.coerce.number().min(0).max(100_000).default(168),
  /** Where uploads and enrolled-target caches live. REENACT_DATA_DIR. */
  dataDir: z.string().default(join(homedir(), '.cache', 'reenact')),
  /** Test-only stage hooks (slow or failing stage), JSON. REENACT_TEST_HOOKS. */
  testHooks: z
    .object({ delayMs: z.number().optional(), delayForMs: z.number().optional(), throwFromMs: z.number().optional(), throwToMs: z.number().optional() })
    .optional(),
  /** Max video bitrate the reenactor publishes, bits per second. REENACT_OUTPUT_BITRATE. */
  outputBitrate: z.coerce.number().int().positive().default(1_500_000),
  /**
   * Publish the synthesized video as simulcast (full, half, quarter size), so the SFU can give a
   * viewer on a weak link a smaller layer at a smooth frame rate. REENACT_SIMULCAST=0|1.
   */
  simulcast: z.coerce.boolean().default(true),
  /**
   * Cap single-layer synthesized video at the SFU's bandwidth estimate toward the room's slowest
   * viewer (server/src/sfu/viewer-bitrate.ts), so a weak link gets a coarser picture, not a frozen
   * one. REENACT_FOLLOW_VIEWERS=0|1.
   */
  followViewers: z.coerce.boolean().default(true),
  /**
   * Inference provider for the face models: auto (CUDA when its libraries are installed, else
   * CPU), cpu, webgpu (Vulkan through Dawn; llvmpipe on a machine without a GPU) or cuda. An
   * explicit webgpu or cuda that cannot start is an error, not a fall back (inference/ort-session.ts).
   * REENACT_PROVIDER.
   */
  provider: z.enum(['auto', 'cpu', 'webgpu', 'cuda']).default('auto'),
  /**
   * Face-model requests gathered into one batch across the sessions of a reenactor process
   * (inference/batcher.ts): at most this many. 0 means the provider's default: 1 (no gathering)
   * on the CPU, 16 on a GPU. REENACT_BATCH_MAX.
   */
  batchMax: z.coerce.number().int().min(0).max(64).default(0),
  /**
   * How long an idle batcher's first request waits for others, ms; 0 (default) waits only for
   * requests already queued, batches then grow while the previous call runs. REENACT_BATCH_WINDOW_MS.
   */
  batchWindowMs: z.coerce.number().min(0).max(50).default(0),
  /**
   * The renderer's warp on the GPU (WebGPU, render/gpu-warp.ts): auto (default) when the face
   * models run on a GPU provider, on (an error when no adapter), off. REENACT_GPU_WARP.
   */
  gpuWarp: z.enum(['auto', 'on', 'off']).default('auto'),
  /**
   * Cluster mode (docs/deploy.md): sessions are placed on reenactor hosts (`npm run agent`)
   * through this Redis instead of local children. Unset (default): the single-machine server,
   * no Redis. REENACT_REDIS_URL.
   */
  redisUrl: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').optional(),
  /** Key and channel prefix in Redis, shared by the edges and hosts of one deployment. REENACT_CLUSTER_PREFIX. */
  clusterPrefix: z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/).default('reenact:'),
  /**
   * Cluster mode: after the edge's link to Redis comes back, how long it waits before reaping
   * hosts (at least the hosts' --ttl-ms), so a Redis restart causes no re-placements.
   * REENACT_CLUSTER_REAP_GRACE_MS.
   */
  clusterReapGraceMs: z.coerce.number().int().min(0).max(600_000).default(6000),
  /** This edge's id in the cluster; default a random one per process. REENACT_EDGE_ID. */
  edgeId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  /**
   * Mark every synthesized frame with the invisible provenance watermark (docs/provenance.md):
   * server, room, session and time, signed with the key in the data folder. REENACT_WATERMARK=0|1.
   */
  watermark: z.coerce.boolean().default(true),
  /** The server's name in watermark payloads; default the host name. REENACT_SERVER_ID. */
  serverId: z.string().max(128).optional(),
  /** Grace period after ICE 'disconnected' before the transport is closed. REENACT_ICE_GRACE_MS. */
  iceDisconnectGraceMs: z.coerce.number().int().min(0).default(5000),
  /** Serve HTTPS when both are set (needed for cameras off localhost). REENACT_TLS_CERT, REENACT_TLS_KEY. */
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  /**
   * SIGTERM drains: new joins are refused (503 with Retry-After, E_DRAINING), rooms are told,
   * and sessions may go on for up to this long before the server closes. REENACT_DRAIN_GRACE_MS.
   */
  drainGraceMs: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
  /**
   * Rate limits and connection caps (server/src/http/rate-limit.ts: tokens, uploads and joins per
   * client address, uploads per room, requests per connection). REENACT_RATE_LIMITS=0|1.
   */
  rateLimits: z.coerce.boolean().default(true),
  /**
   * The operator's secret for the admin API (POST /api/rooms/:room/revoke, as a Bearer token).
   * Unset: the admin API answers 404. REENACT_ADMIN_SECRET.
   */
  adminSecret: z.string().min(16).optional(),
  /** Reenactor child heartbeat: considered hung after this long without one. REENACT_HEARTBEAT_TIMEOUT_MS. */
  heartbeatTimeoutMs: z.coerce.number().int().positive().default(10_000),
});

export type Config = Readonly<Omit<z.infer<typeof configSchema>, 'autoTokens'> & { autoTokens: boolean }>;

export const envNames: Record<keyof z.input<typeof configSchema>, string> = {
  host: 'REENACT_HOST',
  port: 'REENACT_PORT',
  announcedIp: 'REENACT_ANNOUNCED_IP',
  rtcMinPort: 'REENACT_RTC_MIN_PORT',
  rtcMaxPort: 'REENACT_RTC_MAX_PORT',
  workers: 'REENACT_WORKERS',
  tokenSecret: 'REENACT_TOKEN_SECRET',
  tokenTtlMs: 'REENACT_TOKEN_TTL_MS',
  autoTokens: 'REENACT_AUTO_TOKENS',
  sessionsPerReenactor: 'REENACT_SESSIONS_PER_REENACTOR',
  maxSessions: 'REENACT_MAX_SESSIONS',
  measurement: 'REENACT_MEASUREMENT',
  stage: 'REENACT_STAGE',
  outputBitrate: 'REENACT_OUTPUT_BITRATE',
  simulcast: 'REENACT_SIMULCAST',
  followViewers: 'REENACT_FOLLOW_VIEWERS',
  provider: 'REENACT_PROVIDER',
  batchMax: 'REENACT_BATCH_MAX',
  batchWindowMs: 'REENACT_BATCH_WINDOW_MS',
  gpuWarp: 'REENACT_GPU_WARP',
  redisUrl: 'REENACT_REDIS_URL',
  clusterPrefix: 'REENACT_CLUSTER_PREFIX',
  clusterReapGraceMs: 'REENACT_CLUSTER_REAP_GRACE_MS',
  edgeId: 'REENACT_EDGE_ID',
  watermark: 'REENACT_WATERMARK',
  serverId: 'REENACT_SERVER_ID',
  iceDisconnectGraceMs: 'REENACT_ICE_GRACE_MS',
  tlsCert: 'REENACT_TLS_CERT',
  tlsKey: 'REENACT_TLS_KEY',
  heartbeatTimeoutMs: 'REENACT_HEARTBEAT_TIMEOUT_MS',
  drainGraceMs: 'REENACT_DRAIN_GRACE_MS',
  rateLimits: 'REENACT_RATE_LIMITS',
  adminSecret: 'REENACT_ADMIN_SECRET',
  lipZero: 'REENACT_LIP_ZERO',
  output: 'REENACT_OUTPUT',
  renderSize: 'REENACT_RENDER_SIZE',
  trackerModel: 'REENACT_TRACKER_MODEL',
  budgetMs: 'REENACT_BUDGET_MS',
  defaultTarget: 'REENACT_DEFAULT_TARGET',
  uploadTtlHours: 'REENACT_UPLOAD_TTL_HOURS',
  dataDir: 'REENACT_DATA_DIR',
  testHooks: 'REENACT_TEST_HOOKS',
};

/** Whether a listen address is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Whether a setting is a boolean (its env value is read as 0/1, true/false, yes/no). */
function isBooleanKey(key: string): boolean {
  let t: z.ZodTypeAny | undefined = (configSchema.shape as Record<string, z.ZodTypeAny>)[key];
  while (t instanceof z.ZodDefault || t instanceof z.ZodOptional) t = t instanceof z.ZodDefault ? t._def.innerType : t.unwrap();
  return t instanceof z.ZodBoolean;
}

function boolish(v: string): boolean | string {
  if (v === '0' || v === 'false' || v === 'no') return false;
  if (v === '1' || v === 'true' || v === 'yes') return true;
  return v;
}

/**
 * Builds the config from the environment, with `overrides` (tests, embedding)
 * taking precedence. Throws a readable error for any invalid value.
 */
export function loadConfig(overrides: Partial<z.input<typeof configSchema>> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(envNames)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (isBooleanKey(key)) raw[key] = boolish(v);
    else if (key === 'testHooks') {
      try {
        raw[key] = JSON.parse(v);
      } catch {
        throw new Error(`invalid configuration:\n  ${name}: not JSON`);
      }
    } else raw[key] = v;
  }
  const parsed = configSchema.safeParse({ ...raw, ...overrides });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${envNames[i.path[0] as keyof typeof envNames] ?? i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join('\n')}`);
  }
  if (parsed.data.rtcMaxPort < parsed.data.rtcMinPort) throw new Error('invalid configuration: REENACT_RTC_MAX_PORT < REENACT_RTC_MIN_PORT');
  return Object.freeze({ ...parsed.data, autoTokens: parsed.data.autoTokens ?? isLoopbackHost(parsed.data.host) });
}
