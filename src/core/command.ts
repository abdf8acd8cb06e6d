// The shape of a `flowpath <command>` subcommand (src/cli.ts dispatches; each command lives beside the
// code it drives, e.g. src/diagnosis/command.ts).

import type { FlagDef, ParsedArgs } from './flags';

export interface Command {
  summary: string;
  usage: string;
  /** Flags of the subcommand in addition to the exporter's. */
  flags?: readonly FlagDef<unknown>[];
  run(args: ParsedArgs, io: CliIO): Promise<number>;
}

export interface CliIO {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}
