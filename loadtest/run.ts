/**
 * `npm run loadtest -- --sessions N --duration S --driving <video> --out <dir> …`
 *
 * Glass-to-glass load test of the live loop with real wrtc peers and real
 * footage; see docs/loadtest.md. Exit codes: 0 ok, 1 run failed (or was cut
 * by the time cap), 2 bad usage, 130 interrupted.
 *
 * Teardown is guaranteed three ways: the runner's finally (normal path and
 * errors), a watchdog at the time cap, and signal/exit handlers that close
 * every peer and SIGKILL the spawned server's process group.
 */
import { mkdir } from 'node:fs/promises';
import { USAGE, UsageError, hardCapMs, parseOptions, type LoadtestOptions } from './options.ts';
import { Resources, runLoadtest } from './runner.ts';
import { summaryText, writeReport, type Report } from './report.ts';

/** After an abort, how long the orderly teardown may take before we force it. */
const FORCE_EXIT_MS = 20_000;

/** Everything to tear down; module-level so the last-resort handlers below can reach it. */
const res = new Resources();

function log(line: string): void {
  process.stderr.write(`[loadtest] ${line}\n`);
}

async function main(): Promise<number> {
  let opts: LoadtestOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`error: ${err.message}\n\n`);
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  await mkdir(opts.outDir, { recursive: true });

  const controller = new AbortController();
  let interrupted = false;
  const forceExit = (code: number, why: string): never => {
    log(`${why}: forcing teardown`);
    res.closeAllNow();
    process.exit(code);
  };
  const abort = (reason: string): void => {
    if (controller.signal.aborted) return;
    log(`${reason}: stopping …`);
    controller.abort(reason);
    setTimeout(() => forceExit(1, 'teardown took too long'), FORCE_EXIT_MS).unref();
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) forceExit(130, `second ${sig}`);
    interrupted = true;
    abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', () => res.server?.killNow());
  // The hard time cap: never more than CAPS.maxTotalMs from here, whatever the plan said.
  const capMs = hardCapMs(opts);
  const watchdog = setTimeout(() => abort(`time cap of ${Math.round(capMs / 1000)} s reached`), capMs);
  watchdog.unref();

  const report: Report = await runLoadtest(opts, controller.signal, res, log);
  clearTimeout(watchdog);
  const files = await writeReport(opts.outDir, report);
  process.stdout.write(`${summaryText(report, files)}\n`);
  if (interrupted) return 130;
  return report.status === 'ok' ? 0 : 1;
}

process.on('uncaughtException', (err) => {
  log(`uncaught error: ${err.stack ?? err.message}`);
  res.closeAllNow();
  process.exit(1);
});

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
