/**
 * A UDP relay that impairs the media path between WebRTC clients and the SFU:
 * random loss, jitter, a blackout and a bandwidth cap, switched at run time.
 *
 * Why a relay and not `tc netem`: the kernels this project is built and
 * tested on (a Firecracker guest here) ship without sch_netem ("Specified
 * qdisc kind is unknown"), and nothing else in the kernel delays packets. The
 * relay does the same job in user space, on loopback only:
 *
 *   client ──▶ relayIp:p ──(up pipe)──▶ targetIp:p (mediasoup)
 *   client ◀── relayIp:p ◀─(down pipe)── targetIp:p
 *
 * The server announces relayIp in its ICE candidates (REENACT_ANNOUNCED_IP)
 * while listening on targetIp; the relay binds relayIp on every port of the
 * server's RTC range and keeps one upstream socket per client 5-tuple, like
 * a NAT. mediasoup is ICE-lite and answers whatever tuple a valid STUN
 * request came from, so ICE, DTLS and SRTP pass through untouched. The
 * reenactor is given the listen address (it runs on the server's machine),
 * so only the clients' path is impaired.
 *
 * Each direction of each flow is one pipe, as a netem/tbf pair on an
 * interface would be: a token bucket at `rateBps` whose queue holds at most
 * `queueMs` (tail drop beyond), then `delayMs` plus a uniform random
 * 0…`jitterMs` (packets may reorder, as netem's jitter does), loss drawn
 * before the queue. The random source is seeded, so a run repeats.
 */
import dgram from 'node:dgram';
import { prng } from './prng.ts';

export interface Impairment {
  /** Share of packets dropped at random, 0…1. */
  loss?: number;
  /** Fixed one-way delay added to every packet, ms. */
  delayMs?: number;
  /** Extra delay drawn uniformly from 0…jitterMs per packet, ms. */
  jitterMs?: number;
  /** Drop everything. */
  blackout?: boolean;
  /** Bandwidth cap per direction per flow, bit/s (0 or absent: none). */
  rateBps?: number;
  /** Longest queue in front of the cap, ms of sending time (default 100). */
  queueMs?: number;
  /** Impair only one direction (up: clients to the server; down: the server to clients); default both. */
  only?: Direction;
}

export interface PipeCounts {
  forwarded: number;
  lost: number;
  blackedOut: number;
  queueDropped: number;
  /** Packets held back (by the cap's queue or the delay) rather than sent at once. */
  delayed: number;
  bytes: number;
}

export type Direction = 'up' | 'down';


/** One direction of one flow: loss, cap and delay applied to each packet before `send`. */
export class Pipe {
  readonly counts: PipeCounts = { forwarded: 0, lost: 0, blackedOut: 0, queueDropped: 0, delayed: 0, bytes: 0 };
  readonly #random: () => number;
  readonly #impairment: () => Impairment;
  readonly #timers = new Set<NodeJS.Timeout>();
  /** When the cap's "wire" is next free, ms on the performance clock. */
  #wireFreeAt = 0;
  #closed = false;

  readonly #direction: Direction;

  constructor(direction: Direction, impairment: () => Impairment, random: () => number) {
    this.#direction = direction;
    this.#impairment = impairment;
    this.#random = random;
  }

  push(packet: Buffer, send: (packet: Buffer) => void, now = performance.now()): void {
    if (this.#closed) return;
    const set = this.#impairment();
    const imp: Impairment = set.only && set.only !== this.#direction ? {} : set;
    if (imp.blackout) {
      this.counts.blackedOut++;
      return;
    }
    if (imp.loss && this.#random() < imp.loss) {
      this.counts.lost++;
      return;
    }
    let departAt = now;
    if (imp.rateBps && imp.rateBps > 0) {
      const start = Math.max(now, this.#wireFreeAt);
      if (start - now > (imp.queueMs ?? 100)) {
        this.counts.queueDropped++;
        return;
      }
      departAt = start + (packet.length * 8 * 1000) / imp.rateBps;
      this.#wireFreeAt = departAt;
    }
    departAt += (imp.delayMs ?? 0) + (imp.jitterMs ? this.#random() * imp.jitterMs : 0);
    this.counts.forwarded++;
    this.counts.bytes += packet.length;
    const wait = departAt - now;
    if (wait < 0.5) {
      send(packet);
      return;
    }
    this.counts.delayed++;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#closed) send(packet);
    }, wait);
    this.#timers.add(t);
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}

interface Flow {
  upstream: dgram.Socket;
  up: Pipe;
  down: Pipe;
}

export interface RelayOptions {
  /** Address the clients are sent to (the server's announced address), e.g. 127.0.0.2. */
  relayIp: string;
  /** Address the server listens on, e.g. 127.0.0.1. */
  targetIp: string;
  minPort: number;
  maxPort: number;
  seed?: number;
}

export class ImpairmentRelay {
  readonly #opts: RelayOptions;
  readonly #front = new Map<number, dgram.Socket>();
  readonly #flows = new Map<string, Flow>();
  readonly #random: () => number;
  #impairment: Impairment = {};
  #closed = false;

  private constructor(opts: RelayOptions) {
    this.#opts = opts;
    this.#random = prng(opts.seed ?? 1);
  }

  static async start(opts: RelayOptions): Promise<ImpairmentRelay> {
    if (opts.maxPort < opts.minPort || opts.maxPort - opts.minPort > 1000) throw new Error('relay port range must hold 1 to 1001 ports');
    const relay = new ImpairmentRelay(opts);
    try {
      for (let port = opts.minPort; port <= opts.maxPort; port++) await relay.#bind(port);
    } catch (err) {
      relay.close();
      throw err;
    }
    return relay;
  }

  /** Replaces the impairment on every flow, both directions, from now on (packets already queued keep theirs). */
  set(impairment: Impairment): void {
    this.#impairment = { ...impairment };
  }

  get impairment(): Impairment {
    return { ...this.#impairment };
  }

  get flowCount(): number {
    return this.#flows.size;
  }

  /** Packet counts summed over flows, per direction. */
  counts(direction: Direction): PipeCounts {
    const sum: PipeCounts = { forwarded: 0, lost: 0, blackedOut: 0, queueDropped: 0, delayed: 0, bytes: 0 };
    for (const f of this.#flows.values()) {
      const c = f[direction].counts;
      for (const k of Object.keys(sum) as (keyof PipeCounts)[]) sum[k] += c[k];
    }
    return sum;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of this.#flows.values()) {
      f.up.close();
      f.down.close();
      f.upstream.close();
    }
    this.#flows.clear();
    for (const s of this.#front.values()) s.close();
    this.#front.clear();
  }

  async #bind(port: number): Promise<void> {
    const front = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      front.once('error', reject);
      front.bind(port, this.#opts.relayIp, () => {
        front.off('error', reject);
        resolve();
      });
    });
    front.on('error', () => undefined);
    front.on('message', (msg, rinfo) => {
      const flow = this.#flow(port, front, rinfo);
      if (flow) flow.up.push(msg, (p) => flow.upstream.send(p, port, this.#opts.targetIp));
    });
    this.#front.set(port, front);
  }

  #flow(port: number, front: dgram.Socket, client: dgram.RemoteInfo): Flow | undefined {
    if (this.#closed) return undefined;
    const key = `${port}|${client.address}|${client.port}`;
    let flow = this.#flows.get(key);
    if (flow) return flow;
    const upstream = dgram.createSocket('udp4');
    upstream.on('error', () => undefined);
    upstream.bind(0, this.#opts.relayIp);
    const imp = (): Impairment => this.#impairment;
    const created: Flow = { upstream, up: new Pipe('up', imp, this.#random), down: new Pipe('down', imp, this.#random) };
    upstream.on('message', (msg) => {
      created.down.push(msg, (p) => front.send(p, client.port, client.address));
    });
    this.#flows.set(key, created);
    flow = created;
    return flow;
  }
}
