/** `npm start`: runs the server with its embedded defaults (see server/src/config.ts). */
import { loadConfig } from './config.ts';
import { rootLogger } from './logger.ts';
import { ReenactServer } from './server.ts';

const log = rootLogger.child('main');

try {
  const config = loadConfig();
  const server = await ReenactServer.create(config);
  log.info(`open ${server.url}/ in a browser to act; ${server.url}/view/<room> to watch`);
  // SIGTERM (an orchestrator's stop) drains: no new joins, rooms are told, sessions may finish
  // for REENACT_DRAIN_GRACE_MS. SIGINT (Ctrl-C), or a second signal, closes at once.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = signal === 'SIGINT' || server.draining;
    log.info(stopping ? 'shutting down' : 'draining', { signal });
    (stopping ? server.close() : server.drain()).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  log.error('failed to start', { err });
  process.exit(1);
}
