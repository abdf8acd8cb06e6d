// A small leveled logger writing logfmt lines to stderr, like node_exporter's
// ("ts=... level=warn collector=nic msg=..."). Collectors log state changes once (ok -> failing,
// failing -> ok), not once per scrape: see StateLogger.

import { enumFlag } from './flags';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
/** --log.level: declared beside the logger it configures (the exporter and `flowpath diagnose` read it). */
export const logLevelFlag = enumFlag<LogLevel>('log.level', 'info', LOG_LEVELS, 'Only log messages with the given severity or above.');
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function fmtValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

export function createLogger(
  level: LogLevel = 'info',
  sink: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  base: LogFields = {},
): Logger {
  const min = RANK[level];
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[lvl] < min) return;
    const all: LogFields = { ...base, ...fields };
    let line = `ts=${new Date().toISOString()} level=${lvl}`;
    for (const [k, v] of Object.entries(all)) if (v !== undefined) line += ` ${k}=${fmtValue(v)}`;
    line += ` msg=${fmtValue(msg)}`;
    sink(line);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    child: (f) => createLogger(level, sink, { ...base, ...f }),
  };
}

/** A logger that drops everything (tests). */
export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nullLogger;
  },
};

/**
 * Logs a line only when a keyed state changes: `report(key, err)` logs the first failure of `key` and
 * its recovery (`report(key, null)`), and stays quiet while the state is unchanged.
 */
export class StateLogger {
  private readonly failing = new Map<string, string>();
  constructor(private readonly log: Logger) {}

  report(key: string, err: unknown, fields: LogFields = {}): void {
    const prev = this.failing.get(key);
    if (err === null || err === undefined) {
      if (prev !== undefined) {
        this.failing.delete(key);
        this.log.info('recovered', { ...fields, what: key });
      }
      return;
    }
    const msg = err instanceof Error ? err.message : String(err);
    if (prev !== msg) {
      this.failing.set(key, msg);
      this.log.warn(msg, { ...fields, what: key });
    }
  }
}
