/** `npm start`: runs the server with its embedded defaults (see server/src/config.ts). */
import { loadConfig } from './config.ts';
import { rootLogger } from './logger.ts';
import { ReenactServer } from './server.ts';
import { onStopSignals } from './util/stop-signals.ts';

const log = rootLogger.child('main');

try {
  const config = loadConfig();
  const server = await ReenactServer.create(config);
  log.info(`open ${server.url}/ in a browser to act; ${server.url}/view/<room> to watch`);
  // SIGTERM (an orchestrator's stop) drains: no new joins, rooms are told, sessions may finish
  // for REENACT_DRAIN_GRACE_MS. SIGINT (Ctrl-C), or a second signal, closes at once.
  onStopSignals({ drain: () => server.drain(), close: () => server.close(), log });
} catch (err) {
  log.error('failed to start', { err });
  process.exit(1);
}
