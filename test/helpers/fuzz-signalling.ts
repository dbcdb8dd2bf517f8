/**
 * The signalling fuzzer, run as its own process so that its own work (building and encoding
 * hostile messages) does not share an event loop with the server or the live session it is
 * measured against: `node --import tsx test/helpers/fuzz-signalling.ts URL SEED JOIN_TOKENS_JSON`.
 * Sends 24 connections × 400 hostile requests (50 in flight on each), a flood of 400 at once on
 * one more, 20 requests of 1 MB (each on its own connection, which the server closes), and raw
 * socket.io packets on short-lived connections; prints one JSON summary line.
 */
import type { Response } from '../../shared/protocol.ts';
import { hostileRequest, prng } from './fuzz.ts';
import { connectSignal, sendRaw } from './signal.ts';

const [url, seedArg, tokensArg] = process.argv.slice(2);
if (!url || !seedArg || !tokensArg) {
  process.stderr.write('usage: fuzz-signalling.ts URL SEED JOIN_TOKENS_JSON\n');
  process.exit(2);
}
const joinTokens = JSON.parse(tokensArg) as string[];
const r = prng(Number(seedArg));

const codes: Record<string, number> = {};
let sent = 0, answered = 0, ok = 0, timeouts = 0;
const tally = (res: Response | 'timeout'): void => {
  if (res === 'timeout') return void timeouts++;
  answered++;
  if (res.ok) ok++;
  else codes[res.error.code] = (codes[res.error.code] ?? 0) + 1;
};

const sockets = await Promise.all(Array.from({ length: 24 }, () => connectSignal(url)));
process.stdout.write('START\n');
const t0 = Date.now();
await Promise.all(sockets.map(async (s, k) => {
  // Some connections join first, so requests meet a joined peer's state too.
  const token = joinTokens[k];
  if (token) {
    sent++;
    tally(await sendRaw(s, { method: 'join', data: { token } }));
  }
  for (let i = 0; i < 400; i += 50) await Promise.all(Array.from({ length: 50 }, () => (sent++, sendRaw(s, hostileRequest(r)).then(tally))));
}));
const flood = await connectSignal(url);
await Promise.all(Array.from({ length: 400 }, () => (sent++, sendRaw(flood, hostileRequest(r)).then(tally))));
for (const s of [...sockets, flood]) s.close();
const fuzzMs = Date.now() - t0;

// 1 MB requests, each on a connection of its own: past the transport's limit, the server closes
// the connection before buffering the message.
let bigClosed = 0;
const BIG = 20;
await Promise.all(Array.from({ length: BIG }, async (_, i) => {
  const s = await connectSignal(url);
  const closed = new Promise<boolean>((resolve) => {
    s.once('disconnect', () => resolve(true));
    setTimeout(() => resolve(false), 5000);
  });
  sent++;
  void sendRaw(s, i % 2 ? { method: 'join', data: { token: 'a'.repeat(1024 * 1024) } } : { method: 'setTarget', data: { targetId: 'b'.repeat(1024 * 1024) } });
  if (await closed) bigClosed++;
  s.close();
}));

// Raw socket.io packets no typed client sends: reserved event names, broken JSON, a binary
// attachment that never comes, other events with acks. The server may drop such a connection.
const raw = ['42["disconnect"]', '42["connect"]', '42["error",{}]', '42["newListener","request"]', '42["__proto__",{}]', '421["hasOwnProperty",1]', '42[', '4', '42{"a":1}', '451-["request",{"_placeholder":true,"num":0}]', '42["request"]', '420["request",null]'];
for (const packet of raw) {
  const s = await connectSignal(url);
  (s.io.engine as unknown as { write(msg: string): void }).write(packet);
  await new Promise((res) => setTimeout(res, 50));
  s.close();
}
process.stdout.write(`${JSON.stringify({ sent, answered, ok, timeouts, codes, fuzzMs, rawPackets: raw.length, big: BIG, bigClosed })}\n`);
process.exit(0);
