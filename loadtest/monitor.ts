/**
 * Everything sampled once a second during a run: CPU/RSS of the server's
 * process tree and of this load-test process (its peers encode and decode
 * video on the same cores), and a few server gauges from /metrics.
 */
import { ProcTreeSampler, type Classifier, type ProcSample } from './proc-stats.ts';
import { scrape, sumOf } from './prom.ts';

export interface GaugeSample {
  tMs: number;
  sessions: number | null;
  degradeLevel: number | null;
  fpsIn: number | null;
  fpsOut: number | null;
}

const clientClassifier: Classifier = (_p, _cmd, isRoot) => (isRoot ? 'loadtest' : 'other');

export class Monitor {
  readonly serverPid: number | undefined;
  readonly #server: ProcTreeSampler | undefined;
  readonly #client: ProcTreeSampler;
  readonly #url: string;
  readonly #origin: number;
  readonly gauges: GaugeSample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #stopped = false;

  private constructor(url: string, origin: number, serverPid: number | undefined, server: ProcTreeSampler | undefined, client: ProcTreeSampler) {
    this.#url = url;
    this.#origin = origin;
    this.serverPid = serverPid;
    this.#server = server;
    this.#client = client;
  }

  static async start(opts: { url: string; origin: number; serverPid: number | undefined }): Promise<Monitor> {
    const server = opts.serverPid === undefined ? undefined : await ProcTreeSampler.start({ rootPid: opts.serverPid, origin: opts.origin });
    const client = await ProcTreeSampler.start({ rootPid: process.pid, origin: opts.origin, classify: clientClassifier });
    const m = new Monitor(opts.url, opts.origin, opts.serverPid, server, client);
    m.#schedule();
    return m;
  }

  get serverSamples(): readonly ProcSample[] {
    return this.#server?.samples ?? [];
  }

  get clientSamples(): readonly ProcSample[] {
    return this.#client.samples;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#inflight;
    await Promise.all([this.#server?.stop(), this.#client.stop()]);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#inflight = this.#poll().finally(() => this.#schedule());
    }, 1000);
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    try {
      const s = await scrape(this.#url, 2000);
      this.gauges.push({
        tMs: Math.round(s.at - this.#origin),
        sessions: sumOf(s, 'reenact_sessions', { state: 'running' }) ?? null,
        degradeLevel: sumOf(s, 'reenact_degrade_level') ?? null,
        fpsIn: sumOf(s, 'reenact_fps', { direction: 'in' }) ?? null,
        fpsOut: sumOf(s, 'reenact_fps', { direction: 'out' }) ?? null,
      });
    } catch {
      // A missed scrape leaves a gap in the series; the measurement itself does not depend on it.
    }
  }
}
