/**
 * CPU and resident memory of a process and ALL its descendants, sampled from
 * /proc (Linux only). For the server that means the Node main process, its
 * mediasoup workers, its reenactor children and anything they spawn.
 *
 * CPU is utime+stime from /proc/<pid>/stat, differenced between samples and
 * expressed as % of one core (200% = two cores busy). A process born between
 * two samples contributes all its ticks; one that died between two samples
 * loses its last interval (it can no longer be read), so short-lived
 * processes are slightly under-counted.
 */
import { execFileSync } from 'node:child_process';
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime, clock ticks. */
  cpuTicks: number;
  /** Start time after boot, clock ticks: tells a reused pid from the original. */
  startTicks: number;
  rssPages: number;
}

export interface KindStats {
  cpuPercent: number;
  rssBytes: number;
  processes: number;
}

export interface ProcSample {
  /** Since the sampler's origin (run start). */
  tMs: number;
  cpuPercent: number;
  rssBytes: number;
  processes: number;
  byKind: Record<string, KindStats>;
}

/** Names a process for the per-kind breakdown. */
export type Classifier = (p: ProcStat, cmdline: string, isRoot: boolean) => string;

/** Parses one /proc/<pid>/stat line. comm may hold spaces and parentheses, so split at the last ')'. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // Fields after comm, numbered from 3 (state) as in proc(5).
  const f = text.slice(close + 2).split(' ');
  const field = (n: number): number => Number(f[n - 3]);
  const stat: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    ppid: field(4),
    cpuTicks: field(14) + field(15),
    startTicks: field(22),
    rssPages: field(24),
  };
  return Number.isFinite(stat.pid) && Number.isFinite(stat.cpuTicks) && Number.isFinite(stat.rssPages) ? stat : undefined;
}

function getconf(name: string, fallback: number): number {
  try {
    const v = Number(execFileSync('getconf', [name], { encoding: 'utf8', timeout: 2000 }).trim());
    return Number.isFinite(v) && v > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}

let sysconf: { clkTck: number; pageSize: number } | undefined;
function sys(): { clkTck: number; pageSize: number } {
  sysconf ??= { clkTck: getconf('CLK_TCK', 100), pageSize: getconf('PAGESIZE', 4096) };
  return sysconf;
}

/** Every readable process on the box; vanished processes are skipped. */
export async function listProcesses(): Promise<Map<number, ProcStat>> {
  const out = new Map<number, ProcStat>();
  const names = await readdir('/proc');
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        try {
          const s = parseStat(await readFile(`/proc/${n}/stat`, 'utf8'));
          if (s) out.set(s.pid, s);
        } catch {
          // The process exited between readdir and readFile.
        }
      }),
  );
  return out;
}

/** The root and all its descendants (by ppid), root first. */
export function descendants(root: number, procs: ReadonlyMap<number, ProcStat>): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const p of procs.values()) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const rootStat = procs.get(root);
  if (!rootStat) return [];
  const out: ProcStat[] = [rootStat];
  for (let i = 0; i < out.length; i++) for (const c of children.get(out[i]!.pid) ?? []) out.push(c);
  return out;
}

/** The reenact server's process kinds: server (root), mediasoup-worker, reenactor, other. */
export const serverClassifier: Classifier = (p, cmdline, isRoot) => {
  if (isRoot) return 'server';
  if (p.comm.startsWith('mediasoup-work')) return 'mediasoup-worker';
  if (cmdline.includes('reenactor/child')) return 'reenactor';
  return 'other';
};

export interface SamplerOptions {
  rootPid: number;
  /** performance.now() value that tMs counts from. */
  origin: number;
  intervalMs?: number;
  classify?: Classifier;
}

/** Samples a process tree every interval until stopped. The first sample only sets the CPU baseline. */
export class ProcTreeSampler {
  readonly samples: ProcSample[] = [];
  readonly #opts: Required<SamplerOptions>;
  readonly #cmdlines = new Map<string, string>();
  #prev: { at: number; ticks: Map<string, number> } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastError: string | undefined;

  private constructor(opts: SamplerOptions) {
    this.#opts = { intervalMs: 1000, classify: serverClassifier, ...opts };
  }

  /** Takes the baseline sample, then samples every interval. */
  static async start(opts: SamplerOptions): Promise<ProcTreeSampler> {
    const s = new ProcTreeSampler(opts);
    await s.sampleOnce();
    s.#schedule();
    return s;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Stops sampling, after one last sample so the tail of the run is covered. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    await this.sampleOnce();
  }

  async sampleOnce(): Promise<void> {
    const at = performance.now();
    let tree: ProcStat[];
    try {
      tree = descendants(this.#opts.rootPid, await listProcesses());
    } catch (err) {
      this.#lastError = (err as Error).message;
      return;
    }
    if (tree.length === 0) return;
    const { clkTck, pageSize } = sys();
    const ticks = new Map<string, number>();
    const byKind: Record<string, KindStats> = {};
    let cpuTicks = 0;
    let rssBytes = 0;
    for (const p of tree) {
      const key = `${p.pid}:${p.startTicks}`;
      ticks.set(key, p.cpuTicks);
      const kind = this.#opts.classify(p, await this.#cmdline(key, p.pid), p.pid === this.#opts.rootPid);
      const k = (byKind[kind] ??= { cpuPercent: 0, rssBytes: 0, processes: 0 });
      const delta = this.#prev ? p.cpuTicks - (this.#prev.ticks.get(key) ?? 0) : 0;
      k.cpuPercent += delta;
      k.rssBytes += p.rssPages * pageSize;
      k.processes++;
      cpuTicks += delta;
      rssBytes += p.rssPages * pageSize;
    }
    if (this.#prev) {
      const seconds = (at - this.#prev.at) / 1000;
      const pct = (t: number): number => Math.round(((t / clkTck / seconds) * 100) * 10) / 10;
      for (const k of Object.values(byKind)) k.cpuPercent = pct(k.cpuPercent);
      this.samples.push({ tMs: Math.round(at - this.#opts.origin), cpuPercent: pct(cpuTicks), rssBytes, processes: tree.length, byKind });
    }
    this.#prev = { at, ticks };
  }

  async #cmdline(key: string, pid: number): Promise<string> {
    let c = this.#cmdlines.get(key);
    if (c === undefined) {
      c = await readFile(`/proc/${pid}/cmdline`, 'utf8').then(
        (t) => t.replaceAll('\0', ' ').trim(),
        () => '',
      );
      this.#cmdlines.set(key, c);
    }
    return c;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.sampleOnce().finally(() => this.#schedule());
    }, this.#opts.intervalMs);
    this.#timer.unref();
  }
}

/**
 * The pid of the process listening on a TCP port, found through
 * /proc/net/tcp{,6} and the socket inodes in /proc/<pid>/fd. Undefined when
 * no listener is found or it belongs to a process we may not inspect.
 */
export async function findListeningPid(port: number): Promise<number | undefined> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (!local || f[3] !== '0A') continue; // 0A = LISTEN
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && f[9] && f[9] !== '0') inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fds = await readdir(`/proc/${name}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`/proc/${name}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) return Number(name);
    }
  }
  return undefined;
}

export interface ResourceSummary {
  cpuPercentMean: number | null;
  cpuPercentMax: number | null;
  rssBytesMax: number | null;
  rssBytesLast: number | null;
}

/** Mean/max over the samples whose time falls in [fromMs, toMs] (all when omitted). */
export function summarize(samples: readonly ProcSample[], fromMs = -Infinity, toMs = Infinity): ResourceSummary {
  const s = samples.filter((x) => x.tMs >= fromMs && x.tMs <= toMs);
  if (s.length === 0) return { cpuPercentMean: null, cpuPercentMax: null, rssBytesMax: null, rssBytesLast: null };
  const cpu = s.map((x) => x.cpuPercent);
  return {
    cpuPercentMean: Math.round((cpu.reduce((a, b) => a + b, 0) / cpu.length) * 10) / 10,
    cpuPercentMax: Math.max(...cpu),
    rssBytesMax: Math.max(...s.map((x) => x.rssBytes)),
    rssBytesLast: s[s.length - 1]!.rssBytes,
  };
}
