/** `npm start`: runs the server with its embedded defaults (see server/src/config.ts). */
import { loadConfig } from './config.ts';
import { rootLogger } from './logger.ts';
import { ReenactServer } from './server.ts';

const log = rootLogger.child('main');

try {
  const config = loadConfig();
  const server = await ReenactServer.create(config);
  log.info(`open ${server.url}/ in a browser to act; ${server.url}/view/<room> to watch`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    server.close().then(
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
