/**
 * `npm run agent -- --redis <url> --slots N [--id ID] [--prefix P]`: a reenactor host
 * (cluster/agent.ts). The children it runs read the same REENACT_* settings as a server
 * (REENACT_PROVIDER, REENACT_DATA_DIR: the folder with the enrollment cache, shared with the
 * edges or on the same machine). SIGTERM drains (REENACT_DRAIN_GRACE_MS); SIGINT stops at once.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { rootLogger } from '../logger.ts';
import { ReenactorAgent } from './agent.ts';
import { onStopSignals } from '../util/stop-signals.ts';

const USAGE = 'usage: npm run agent -- --redis redis://host:6379 --slots N [--id ID] [--prefix reenact:] [--heartbeat-ms 2000] [--ttl-ms 6000]';
const log = rootLogger.child('agent-cli');

function parse(): { redis: string; slots: number; id: string; prefix: string; heartbeatMs: number; ttlMs: number } {
  const { values } = parseArgs({
    options: { redis: { type: 'string' }, slots: { type: 'string', default: '4' }, id: { type: 'string' }, prefix: { type: 'string', default: 'reenact:' }, 'heartbeat-ms': { type: 'string', default: '2000' }, 'ttl-ms': { type: 'string', default: '6000' }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const redis = values.redis ?? process.env['REENACT_REDIS_URL'];
  if (!redis || !/^rediss?:\/\//.test(redis)) throw new Error('--redis redis://host:port is required');
  const slots = Number(values.slots);
  if (!Number.isInteger(slots) || slots < 1 || slots > 256) throw new Error(`--slots must be 1..256, got ${values.slots}`);
  const id = values.id ?? `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new Error('--id takes 1-64 letters, digits, dot, dash or underscore');
  const heartbeatMs = Number(values['heartbeat-ms']);
  const ttlMs = Number(values['ttl-ms']);
  if (!(heartbeatMs >= 100 && ttlMs >= 2 * heartbeatMs)) throw new Error('--heartbeat-ms must be ≥ 100 and --ttl-ms at least twice it');
  return { redis, slots, id, prefix: values.prefix, heartbeatMs, ttlMs };
}

try {
  const args = parse();
  const config = loadConfig();
  const agent = await ReenactorAgent.start({ redisUrl: args.redis, prefix: args.prefix, id: args.id, slots: args.slots, heartbeatMs: args.heartbeatMs, ttlMs: args.ttlMs, config, log: rootLogger });
  // SIGTERM drains (hands sessions over, REENACT_DRAIN_GRACE_MS at most); SIGINT or a second signal stops at once.
  onStopSignals({ drain: () => agent.drain(config.drainGraceMs), close: () => agent.close(), log, fields: () => ({ sessions: agent.sessions }) });
} catch (err) {
  console.error(`agent: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  process.exit(2);
}
