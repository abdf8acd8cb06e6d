// Process-level safety net of the serving exporter.

import type { Logger } from './log';

/**
 * The last resort for a promise rejected where nothing handles it: logged, never fatal (Node 20 would
 * end the process). Every known path handles its own errors; this keeps an overlooked one from taking
 * the exporter down.
 */
export function installRejectionHandler(log: Logger): () => void {
  const onRejection = (reason: unknown) => {
    log.error('unhandled promise rejection (a bug: please report it)', { err: reason instanceof Error ? (reason.stack ?? reason.message).split('\n').slice(0, 3).join(' | ') : String(reason) });
  };
  process.on('unhandledRejection', onRejection);
  return () => process.off('unhandledRejection', onRejection);
}
