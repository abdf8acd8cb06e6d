#!/usr/bin/env node
// flowpath command line: `flowpath [flags]` serves the exporter; subcommands do one-off work.
// A wrong flag or value exits with status 2 and a one-line reason on stderr.

import * as http from 'http';
import { Config, FlagDef, ParsedArgs, UsageError, formatFlagHelp, parseArgs } from './core/flags';
import type { Command, CliIO } from './core/command';
import { createLogger, logLevelFlag } from './core/log';
import { catalogueJson, renderCatalogue, sectionsFor } from './core/catalogue';
import { ALL_COLLECTORS } from './collectors';
import { Exporter, allFlags, exporterFamilies, listenFlag, webConfigFlag } from './exporter';
import { installRejectionHandler } from './core/last-resort';
import { WebConfig, WebConfigError, WebConfigHolder, basicAuthGuard, createHttpsServer, loadWebConfig } from './web-config';
import { createApp, parseListenAddress } from './server';
import { samplerFromRegistry } from './collectors/diagnosis';
import { mountDiagnosisApi } from './diagnosis/api';
import { diagnoseCommand } from './diagnosis/command';
import { windowFlag } from './diagnosis/flags';
import { rulesCommand } from './mixin/command';
import { dashboardsCommand } from './dashboards/command';
import { VERSION } from './version';

export type { Command, CliIO } from './core/command';

const catalogueCommand: Command = {
  summary: 'Print the metric catalogue (docs/metrics.md) generated from the code.',
  usage: 'flowpath catalogue [--json]',
  flags: [],
  async run(args, io) {
    const sections = sectionsFor(ALL_COLLECTORS, exporterFamilies());
    if (args.positional.includes('json')) io.stdout(JSON.stringify(catalogueJson(sections), null, 2) + '\n');
    else io.stdout(renderCatalogue(sections));
    return 0;
  },
};

export const COMMANDS: Record<string, Command> = {
  diagnose: diagnoseCommand,
  catalogue: catalogueCommand,
  rules: rulesCommand,
  dashboards: dashboardsCommand,
};

function usage(): string {
  const cmds = Object.entries(COMMANDS)
    .map(([n, c]) => `  ${n.padEnd(12)} ${c.summary}`)
    .join('\n');
  const collectors = ALL_COLLECTORS.map(
    (d) => `  ${d.name.padEnd(12)} ${d.defaultEnabled ? '[on] ' : '[off]'} ${d.description}`,
  ).join('\n');
  return `usage: flowpath [<flags>] [<command> ...]

flowpath ${VERSION}: a Prometheus exporter that explains why a single TCP flow cannot reach line rate.
Without a command it serves /metrics, /healthz, /readyz, /api/... and a landing page.

Commands:
${cmds}

Collectors (enable with --collector.<name>, disable with --no-collector.<name>):
${collectors}

Flags:
  -h, --help                 Show this help.
      --version              Show the version.
${formatFlagHelp(allFlags())}
`;
}

async function serve(config: Config, web: WebConfig | undefined, io: CliIO): Promise<number> {
  const log = createLogger(config.get(logLevelFlag));
  installRejectionHandler(log);
  const { host, port } = parseListenAddress(config.get(listenFlag));
  const exporter = new Exporter(config, log);
  exporter.start();
  const holder = web ? new WebConfigHolder(web) : undefined;
  const app = createApp(exporter, {
    routes: (a) =>
      mountDiagnosisApi(a, { sampler: () => samplerFromRegistry(exporter.registry), defaultWindowSeconds: config.get(windowFlag) }),
    guard: holder && holder.current.users.size > 0 ? basicAuthGuard(holder) : undefined,
    headers: web?.headers,
  });
  const server = holder?.current.tls ? createHttpsServer(holder, app, log) : http.createServer(app);
  if (host === undefined) server.listen(port);
  else server.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  log.info('listening', {
    address: config.get(listenFlag),
    tls: holder?.current.tls ? 'on' : 'off',
    basic_auth: holder && holder.current.users.size > 0 ? 'on' : 'off',
    collectors: exporter.registry.enabledNames().join(','),
  });
  // The first collection starts now, so /readyz turns ready without waiting for a scrape.
  void exporter.registry.scrape().catch((e: unknown) => log.warn('first collection failed', { err: (e as Error).message }));
  const stop = (sig: string) => {
    log.info('shutting down', { signal: sig });
    server.close();
    void exporter.close().finally(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  void io;
  return new Promise<number>(() => {
    /* runs until a signal */
  });
}

/** The subcommand word: the first argument that is neither a flag nor the value of a "--flag value". */
function findCommand(argv: readonly string[]): string | undefined {
  const takesValue = new Set<string>();
  for (const f of [...allFlags(), ...Object.values(COMMANDS).flatMap((c) => c.flags ?? [])]) if (!f.boolean) takesValue.add(f.name);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return undefined;
    if (!a.startsWith('-')) return a;
    if (a.startsWith('--') && !a.includes('=') && takesValue.has(a.slice(2))) i++;
  }
  return undefined;
}

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const first = findCommand(argv);
  const cmd = first !== undefined ? COMMANDS[first] : undefined;
  if (first !== undefined && !cmd) {
    io.stderr(`flowpath: unknown command "${first}" (see --help)\n`);
    return 2;
  }
  const flags = [...allFlags(), ...(cmd?.flags ?? [])];
  let args: ParsedArgs;
  try {
    args = parseArgs(flags, argv);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`flowpath: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (args.help) {
    io.stdout(cmd ? `usage: ${cmd.usage}\n\n${cmd.summary}\n\n${formatFlagHelp(cmd.flags ?? [])}\n` : usage());
    return 0;
  }
  if (args.version) {
    io.stdout(`flowpath ${VERSION} (node ${process.versions.node})\n`);
    return 0;
  }
  if (cmd) {
    args.positional.splice(args.positional.indexOf(first as string), 1);
    try {
      return await cmd.run(args, io);
    } catch (e) {
      if (e instanceof UsageError) {
        io.stderr(`flowpath ${first}: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
  }
  try {
    parseListenAddress(args.config.get(listenFlag));
  } catch (e) {
    io.stderr(`flowpath: --web.listen-address: ${(e as Error).message}\n`);
    return 2;
  }
  let web: WebConfig | undefined;
  const webFile = args.config.get(webConfigFlag);
  if (webFile !== '') {
    try {
      web = loadWebConfig(webFile);
    } catch (e) {
      if (!(e instanceof WebConfigError)) throw e;
      io.stderr(`flowpath: --web.config.file: ${e.message}\n`);
      return 2;
    }
  }
  return serve(args.config, web, io);
}

if (require.main === module) {
  const io: CliIO = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`flowpath: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}

