// Command-line flags in the exporter tradition (node_exporter/kingpin): --name=value or --name value,
// --flag / --no-flag for booleans. Every flag is declared once as a typed FlagDef; collectors declare
// their own flags next to their code and the CLI collects them all for parsing and --help.

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface FlagDef<T> {
  readonly name: string;
  readonly help: string;
  readonly default: T;
  readonly boolean: boolean;
  /** Placeholder shown in --help, e.g. "<duration>". */
  readonly placeholder: string;
  /** Parse one occurrence; `prev` is the value so far (for repeatable flags). Throws UsageError. */
  parse(raw: string, prev: T): T;
  /** Render the default for --help. */
  show(v: T): string;
}

export function stringFlag(name: string, def: string, help: string, placeholder = '<string>'): FlagDef<string> {
  return { name, help, default: def, boolean: false, placeholder, parse: (s) => s, show: (v) => JSON.stringify(v) };
}

export function boolFlag(name: string, def: boolean, help: string): FlagDef<boolean> {
  return {
    name,
    help,
    default: def,
    boolean: true,
    placeholder: '',
    parse: (s) => {
      if (s === '' || s === 'true' || s === '1') return true;
      if (s === 'false' || s === '0') return false;
      throw new UsageError(`--${name}: expected true or false, got "${s}"`);
    },
    show: (v) => String(v),
  };
}

export function intFlag(name: string, def: number, help: string, min = 0, max = Number.MAX_SAFE_INTEGER): FlagDef<number> {
  return {
    name,
    help,
    default: def,
    boolean: false,
    placeholder: '<int>',
    parse: (s) => {
      if (!/^-?\d+$/.test(s)) throw new UsageError(`--${name}: expected an integer, got "${s}"`);
      const n = Number(s);
      if (n < min || n > max) throw new UsageError(`--${name}: ${n} is outside ${min}..${max}`);
      return n;
    },
    show: (v) => String(v),
  };
}

export function floatFlag(name: string, def: number, help: string, min = 0, max = Number.MAX_VALUE): FlagDef<number> {
  return {
    name,
    help,
    default: def,
    boolean: false,
    placeholder: '<number>',
    parse: (s) => {
      const n = Number(s);
      if (s.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name}: expected a number, got "${s}"`);
      if (n < min || n > max) throw new UsageError(`--${name}: ${n} is outside ${min}..${max}`);
      return n;
    },
    show: (v) => String(v),
  };
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
/** Parse a Prometheus-style duration ("500ms", "5s", "1m") into seconds. */
export function parseDuration(s: string): number {
  const m = DURATION_RE.exec(s);
  if (!m) throw new UsageError(`expected a duration like 500ms, 5s or 1m, got "${s}"`);
  const n = Number(m[1]);
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return n * mult;
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** Duration flag; the value is in seconds. */
export function durationFlag(name: string, defSeconds: number, help: string, minSeconds = 0): FlagDef<number> {
  return {
    name,
    help,
    default: defSeconds,
    boolean: false,
    placeholder: '<duration>',
    parse: (s) => {
      let v: number;
      try {
        v = parseDuration(s);
      } catch (e) {
        throw new UsageError(`--${name}: ${(e as Error).message}`);
      }
      if (v < minSeconds) throw new UsageError(`--${name}: must be at least ${formatDuration(minSeconds)}`);
      return v;
    },
    show: formatDuration,
  };
}

/** Regular expression flag, anchored like Prometheus/node_exporter regex flags. Empty = none. */
export function regexFlag(name: string, def: string, help: string): FlagDef<RegExp | null> {
  const compile = (s: string): RegExp | null => {
    if (s === '') return null;
    try {
      return new RegExp(`^(?:${s})$`);
    } catch (e) {
      throw new UsageError(`--${name}: invalid regular expression: ${(e as Error).message}`);
    }
  };
  return {
    name,
    // Every regex flag is anchored (compiled as ^(?:...)$), so every help text says so.
    help: `${help} Anchored at both ends like Prometheus relabel regexes: it must match the whole name.`,
    default: compile(def),
    boolean: false,
    placeholder: '<regex>',
    parse: (s) => compile(s),
    show: (v) => (v ? JSON.stringify(v.source.slice(4, -2)) : '""'),
  };
}

/** Repeatable string flag (each occurrence appends). */
export function listFlag(name: string, help: string, placeholder = '<string>'): FlagDef<readonly string[]> {
  return {
    name,
    help: help + ' (repeatable)',
    default: [],
    boolean: false,
    placeholder,
    parse: (s, prev) => [...prev, s],
    show: (v) => (v.length ? JSON.stringify(v) : 'none'),
  };
}

/** Enumerated string flag. */
export function enumFlag<T extends string>(name: string, def: T, values: readonly T[], help: string): FlagDef<T> {
  return {
    name,
    help: `${help} One of: ${values.join(', ')}.`,
    default: def,
    boolean: false,
    placeholder: `<${values.join('|')}>`,
    parse: (s) => {
      if (!(values as readonly string[]).includes(s)) {
        throw new UsageError(`--${name}: expected one of ${values.join(', ')}, got "${s}"`);
      }
      return s as T;
    },
    show: (v) => v,
  };
}

/** Parsed flag values. Reading a flag that was not declared to the parser is a programming error. */
export class Config {
  private readonly values = new Map<string, unknown>();
  private readonly explicit = new Set<string>();

  constructor(private readonly defs: readonly FlagDef<unknown>[]) {
    for (const d of defs) this.values.set(d.name, d.default);
  }

  get<T>(def: FlagDef<T>): T {
    if (!this.values.has(def.name)) throw new Error(`flag --${def.name} is not registered`);
    return this.values.get(def.name) as T;
  }

  /** True if the user gave the flag on the command line. */
  isSet(def: FlagDef<unknown>): boolean {
    return this.explicit.has(def.name);
  }

  set<T>(def: FlagDef<T>, v: T): void {
    this.values.set(def.name, v);
    this.explicit.add(def.name);
  }

  /** For tests and embedding: a Config with defaults, some overridden by raw strings. */
  static from(defs: readonly FlagDef<unknown>[], overrides: Record<string, string | boolean> = {}): Config {
    const args = Object.entries(overrides).map(([k, v]) =>
      typeof v === 'boolean' ? (v ? `--${k}` : `--no-${k}`) : `--${k}=${v}`,
    );
    return parseArgs(defs, args).config;
  }

  allDefs(): readonly FlagDef<unknown>[] {
    return this.defs;
  }
}

export interface ParsedArgs {
  config: Config;
  positional: string[];
  help: boolean;
  version: boolean;
}

/** Parse argv (without node and script). Throws UsageError with a one-line reason. */
export function parseArgs(defs: readonly FlagDef<unknown>[], argv: readonly string[]): ParsedArgs {
  const byName = new Map<string, FlagDef<unknown>>();
  for (const d of defs) {
    if (byName.has(d.name)) throw new Error(`flag --${d.name} declared twice`);
    byName.set(d.name, d);
  }
  const config = new Config(defs);
  const positional: string[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg === '--version') {
      version = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown flag ${arg}`);
      positional.push(arg);
      continue;
    }
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    let name = eq >= 0 ? body.slice(0, eq) : body;
    let raw: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    let def = byName.get(name);
    if (!def && name.startsWith('no-')) {
      const pos = byName.get(name.slice(3));
      if (pos?.boolean) {
        if (raw !== undefined) throw new UsageError(`--${name} takes no value`);
        def = pos;
        name = pos.name;
        raw = 'false';
      }
    }
    if (!def) throw new UsageError(`unknown flag --${name}`);
    if (raw === undefined) {
      if (def.boolean) raw = 'true';
      else {
        if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
        raw = argv[++i];
      }
    }
    const prev = config.get(def);
    config.set(def, def.parse(raw, prev));
  }
  return { config, positional, help, version };
}

/** Render flag help lines, kingpin style. */
export function formatFlagHelp(defs: readonly FlagDef<unknown>[]): string {
  const lines: string[] = [];
  for (const d of defs) {
    const head = d.boolean ? `  --[no-]${d.name}` : `  --${d.name}=${d.placeholder}`;
    lines.push(head);
    lines.push(`      ${d.help} (default: ${d.show(d.default)})`);
  }
  return lines.join('\n');
}
