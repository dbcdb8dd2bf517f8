/**
 * Messages between edges and reenactor hosts over Redis pub/sub (issue 17): an edge talks to a
 * host on `P host:<id>`, a host answers on `P edge:<id>`. Messages are JSON. Pub/sub keeps no
 * backlog: what must survive a lost message lives in the store (placements, with epochs), and
 * both sides reconcile against it (a host asks an edge to resend a start it never received).
 */
import { createClient } from 'redis';

type Client = ReturnType<typeof createClient>;

export class ClusterBus {
  readonly #pub: Client;
  readonly #sub: Client;
  readonly prefix: string;

  private constructor(pub: Client, sub: Client, prefix: string) {
    this.#pub = pub;
    this.#sub = sub;
    this.prefix = prefix;
  }

  static async connect(url: string, prefix = 'reenact:'): Promise<ClusterBus> {
    const opts = { url, socket: { reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000) } };
    const pub = createClient(opts);
    const sub = createClient(opts);
    pub.on('error', () => undefined);
    sub.on('error', () => undefined);
    await pub.connect();
    await sub.connect();
    return new ClusterBus(pub, sub, prefix);
  }

  hostChannel(id: string): string {
    return `${this.prefix}host:${id}`;
  }

  edgeChannel(id: string): string {
    return `${this.prefix}edge:${id}`;
  }

  async publish(channel: string, message: unknown): Promise<void> {
    await this.#pub.publish(channel, JSON.stringify(message));
  }

  /** Calls `on` for every message on the channel (a malformed one is dropped). */
  async subscribe(channel: string, on: (message: unknown) => void): Promise<void> {
    await this.#sub.subscribe(channel, (raw) => {
      let msg: unknown;
      try {
        msg = JSON.parse(raw);
      } catch {
        return;
      }
      on(msg);
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.#pub.quit().catch(() => this.#pub.disconnect()), this.#sub.quit().catch(() => this.#sub.disconnect())]);
  }
}
