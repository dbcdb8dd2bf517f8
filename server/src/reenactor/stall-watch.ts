/**
 * Notices a received video that has stopped and gets it going again,
 * instead of waiting for libwebrtc's receiver to.
 *
 * After the reenactor process was stopped for 5 s (SIGSTOP), its receiver
 * delivered nothing for 4.8 s after SIGCONT while the SFU kept receiving the
 * actor's camera at full rate (measured here), and keyframe requests alone
 * did not shorten it: the receiver itself is stuck on what piled up in its
 * socket. A fresh receiver (the camera consumed again) starts clean. So:
 *
 * - no decoded frame for STALL_MS after frames were flowing: ask for a
 *   keyframe (cheap; it also asks the SFU whether the actor's media is still
 *   arriving), again every REQUEST_GAP_MS, slowing to SLOW_GAP_MS after
 *   SLOW_AFTER unanswered tries (an actor whose camera is simply off should
 *   not be asked 60 times a minute);
 * - still nothing after RESUBSCRIBE_AFTER_MS while the SFU says the actor's
 *   media is arriving: the fault is on this side, so consume the camera
 *   again, at most once per RESUBSCRIBE_GAP_MS. When the actor's own link is
 *   down (a blackout) there is nothing to resubscribe to; when it comes back,
 *   the renewal also drops the old receiver's swollen jitter buffer (3 s
 *   blackout: latency back to normal 3.2-5.5 s after it, against 8.1-8.3 s
 *   with keyframe requests alone; docs/reliability.md);
 * - the watch's own timer fired more than FROZEN_MS late: this process was
 *   not running (stopped, or starved), so its sockets overflowed and the
 *   receiver will stall: renew it at once rather than wait to see it.
 */
export const STALL_MS = 500;
export const REQUEST_GAP_MS = 1000;
export const SLOW_AFTER = 5;
export const SLOW_GAP_MS = 5000;
export const RESUBSCRIBE_AFTER_MS = 700;
export const RESUBSCRIBE_GAP_MS = 5000;
export const FROZEN_MS = 1000;

export type StallAction = 'keyframe' | 'resubscribe' | 'frozen' | null;

export class StallWatch {
  #lastFrameAt: number | null = null;
  #lastAskAt = -Infinity;
  #lastResubscribeAt = -Infinity;
  #unanswered = 0;
  #producerLive = false;
  #lastCheckAt: number | null = null;
  readonly counts = { keyframe: 0, resubscribe: 0, frozen: 0 };

  /** A decoded frame arrived. */
  frame(now: number): void {
    this.#lastFrameAt = now;
    this.#unanswered = 0;
    this.#producerLive = false;
  }

  /** The SFU's answer to a keyframe request: whether the actor's media is arriving there. */
  answered(producerLive: boolean): void {
    this.#producerLive = producerLive;
  }

  /** What to do now, if anything (and counts it). Called on a short timer. */
  due(now: number): StallAction {
    const frozen = this.#lastCheckAt !== null && now - this.#lastCheckAt > FROZEN_MS;
    this.#lastCheckAt = now;
    if (this.#lastFrameAt === null) return null;
    if (frozen && now - this.#lastResubscribeAt >= RESUBSCRIBE_GAP_MS) {
      this.#lastResubscribeAt = now;
      this.counts.frozen++;
      return 'frozen';
    }
    const stalled = now - this.#lastFrameAt;
    if (stalled < STALL_MS) return null;
    if (stalled >= RESUBSCRIBE_AFTER_MS && this.#producerLive && now - this.#lastResubscribeAt >= RESUBSCRIBE_GAP_MS) {
      this.#lastResubscribeAt = now;
      this.#producerLive = false;
      this.counts.resubscribe++;
      return 'resubscribe';
    }
    const gap = this.#unanswered >= SLOW_AFTER ? SLOW_GAP_MS : REQUEST_GAP_MS;
    if (now - this.#lastAskAt < gap) return null;
    this.#lastAskAt = now;
    this.#unanswered++;
    this.counts.keyframe++;
    return 'keyframe';
  }
}
