/**
 * One structured logger for the whole server. Every module takes a child
 * scoped by name and context (room, peer, session). Output is one JSON object
 * per line on stderr so stdout stays free for CLIs and IPC. No other module
 * writes to the console directly.
 *
 * Face images and user identifiers never go into log text: log ids only.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: number = levelRank[(process.env['REENACT_LOG_LEVEL'] as LogLevel | undefined) ?? 'info'] ?? 20;

export function setLogLevel(level: LogLevel): void {
  threshold = levelRank[level];
}

export type LogContext = Record<string, unknown>;

export class Logger {
  readonly #scope: string;
  readonly #context: LogContext;

  constructor(scope: string, context: LogContext = {}) {
    this.#scope = scope;
    this.#context = context;
  }

  child(scope: string, context: LogContext = {}): Logger {
    return new Logger(`${this.#scope}:${scope}`, { ...this.#context, ...context });
  }

  debug(msg: string, extra?: LogContext): void {
    this.#write('debug', msg, extra);
  }

  info(msg: string, extra?: LogContext): void {
    this.#write('info', msg, extra);
  }

  warn(msg: string, extra?: LogContext): void {
    this.#write('warn', msg, extra);
  }

  error(msg: string, extra?: LogContext): void {
    const { err, ...rest } = extra ?? {};
    const errText = err instanceof Error ? (err.stack ?? err.message) : err === undefined ? undefined : JSON.stringify(err);
    this.#write('error', msg, { ...rest, err: errText });
  }

  #write(level: LogLevel, msg: string, extra?: LogContext): void {
    if (levelRank[level] < threshold) return;
    const line = JSON.stringify({
      t: new Date().toISOString(),
      level,
      scope: this.#scope,
      msg,
      ...this.#context,
      ...extra,
    });
    process.stderr.write(line + '\n');
  }
}

export const rootLogger = new Logger('reenact');
