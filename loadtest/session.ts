/**
 * One load-test session: a FootageActor publishing stamped footage into its
 * own room (or, in privacy mode, a TracksActor sending the footage's
 * landmarks) and a StampViewer consuming that room's synthesized output.
 * close() is idempotent and closes both peers (every track, sink and peer
 * connection: wrtc hangs or crashes at exit otherwise).
 */
import { FootageActor, StampViewer, TracksActor, type DecodedClip, type TrackedClip } from './peers.ts';

/** What a session needs of its actor, video or landmarks. */
export type SessionActor = Pick<FootageActor, 'sentAt' | 'framesSent' | 'finished' | 'stop'>;

export type TokenSource = (room: string, role: 'actor' | 'viewer') => Promise<string>;

export interface SessionStartOptions {
  index: number;
  room: string;
  url: string;
  tokens: TokenSource;
  clip: DecodedClip;
  /** Privacy mode: send these landmarks instead of the clip's video. */
  tracked?: TrackedClip;
  /** How long the actor publishes, from its first frame. */
  durationMs: number;
  /** How long the viewer waits for the room's synthesized producer. */
  waitProducerMs?: number;
}

export class LoadSession {
  readonly index: number;
  readonly room: string;
  /** performance.now() when start() was called (before the actor connected). */
  readonly startedAt: number;
  readonly actor: SessionActor;
  readonly viewer: StampViewer;
  #closed = false;

  private constructor(index: number, room: string, startedAt: number, actor: SessionActor, viewer: StampViewer) {
    this.index = index;
    this.room = room;
    this.startedAt = startedAt;
    this.actor = actor;
    this.viewer = viewer;
  }

  static async start(opts: SessionStartOptions): Promise<LoadSession> {
    const startedAt = performance.now();
    const [actorToken, viewerToken] = await Promise.all([opts.tokens(opts.room, 'actor'), opts.tokens(opts.room, 'viewer')]);
    const actor: SessionActor = opts.tracked
      ? await TracksActor.start({ url: opts.url, token: actorToken, tracked: opts.tracked, durationMs: opts.durationMs })
      : await FootageActor.start({ url: opts.url, token: actorToken, clip: opts.clip, durationMs: opts.durationMs });
    try {
      const viewer = await StampViewer.start({ url: opts.url, token: viewerToken, waitProducerMs: opts.waitProducerMs ?? 20_000 });
      return new LoadSession(opts.index, opts.room, startedAt, actor, viewer);
    } catch (err) {
      actor.stop();
      throw err;
    }
  }

  /** performance.now() of the actor's first frame (handed to the encoder). */
  get publishedAt(): number {
    return this.actor.sentAt.get(1) ?? this.startedAt;
  }

  /** performance.now() of the viewer's first synthesized frame, if any arrived. */
  get firstFrameAt(): number | undefined {
    return this.viewer.received[0]?.at;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.viewer.close();
    this.actor.stop();
  }
}
