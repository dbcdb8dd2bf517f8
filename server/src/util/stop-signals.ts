/**
 * How a long-running process of ours stops: SIGTERM (an orchestrator's stop) drains, SIGINT
 * (Ctrl-C) or a second signal closes at once; then the process exits 0, or 1 when stopping
 * failed. Used by the server (npm start) and the reenactor host (npm run agent).
 */
import type { Logger } from '../logger.ts';

export function onStopSignals(opts: { drain: () => Promise<void>; close: () => Promise<void>; log: Logger; fields?: () => Record<string, unknown> }): void {
  let draining = false;
  let closing = false;
  const stop = (signal: string): void => {
    if (closing) return;
    closing = signal === 'SIGINT' || draining;
    draining = true;
    opts.log.info(closing ? 'shutting down' : 'draining', { signal, ...opts.fields?.() });
    (closing ? opts.close() : opts.drain()).then(
      () => process.exit(0),
      (err: unknown) => {
        opts.log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
