/**
 * One load-test session: a FootageActor publishing stamped footage into its
 * own room (or, in privacy mode, a TracksActor sending the footage's
 * landmarks) and a StampViewer consuming that room's synthesized output.
 * close() is idempotent and closes both peers (every track, sink and peer
 * connection: wrtc hangs or crashes at exit otherwise).
 *
 * With a voice (--audio), the actor also publishes the clip's sound as its
 * microphone, with a tone marker each second, and the viewer listens to the
 * room's synthesized audio (audio.ts), so the A/V offset is measured per
 * session.
 */
import { FootageActor, StampViewer, TracksActor, latencies, type DecodedClip, type TrackedClip } from './peers.ts';
import { VoiceListener, VoiceSender, avOffsets, type AvSample, type Voice } from './audio.ts';

/** What a session needs of its actor, video or landmarks. */
export type SessionActor = Pick<FootageActor, 'sentAt' | 'framesSent' | 'finished' | 'stop' | 'peer'>;

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
  /** The actor's voice: published as its microphone, listened for at the viewer. */
  voice?: Voice;
}

export class LoadSession {
  readonly index: number;
  readonly room: string;
  /** performance.now() when start() was called (before the actor connected). */
  readonly startedAt: number;
  readonly actor: SessionActor;
  readonly viewer: StampViewer;
  readonly voice: { sender: VoiceSender; listener: VoiceListener } | undefined;
  #closed = false;

  private constructor(index: number, room: string, startedAt: number, actor: SessionActor, viewer: StampViewer, voice: LoadSession['voice']) {
    this.index = index;
    this.room = room;
    this.startedAt = startedAt;
    this.actor = actor;
    this.viewer = viewer;
    this.voice = voice;
  }

  static async start(opts: SessionStartOptions): Promise<LoadSession> {
    const startedAt = performance.now();
    const [actorToken, viewerToken] = await Promise.all([opts.tokens(opts.room, 'actor'), opts.tokens(opts.room, 'viewer')]);
    const actor: SessionActor = opts.tracked
      ? await TracksActor.start({ url: opts.url, token: actorToken, tracked: opts.tracked, durationMs: opts.durationMs })
      : await FootageActor.start({ url: opts.url, token: actorToken, clip: opts.clip, durationMs: opts.durationMs });
    let sender: VoiceSender | undefined;
    let viewer: StampViewer | undefined;
    try {
      if (opts.voice) sender = await VoiceSender.start(actor.peer, opts.voice);
      viewer = await StampViewer.start({ url: opts.url, token: viewerToken, waitProducerMs: opts.waitProducerMs ?? 20_000 });
      const listener = opts.voice ? await VoiceListener.start(viewer.peer) : undefined;
      return new LoadSession(opts.index, opts.room, startedAt, actor, viewer, sender && listener ? { sender, listener } : undefined);
    } catch (err) {
      sender?.stop();
      viewer?.close();
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

  /** A/V offsets of the markers heard so far (empty without a voice). */
  avSamples(): AvSample[] {
    if (!this.voice) return [];
    return avOffsets(this.voice.sender.markerSentAt, this.voice.listener.onsets, latencies(this.actor, this.viewer));
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.voice?.listener.close();
    this.voice?.sender.stop();
    this.viewer.close();
    this.actor.stop();
  }
}
