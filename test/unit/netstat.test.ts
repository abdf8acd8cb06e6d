// /proc/net/netstat + /proc/net/snmp parser and the netstat collector on fixture trees.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Config } from '../../src/core/flags';
import { nullLogger } from '../../src/core/log';
import { Emitter } from '../../src/core/metrics';
import { parseNetstat, readNetstat } from '../../src/sources/procfs/netstat';
import { NETSTAT_FIELDS, netstatCollector } from '../../src/collectors/netstat';
import { allFlags } from '../../src/exporter';
import { promtoolAvailable, promtoolCheckMetrics } from '../support/promtool';

const FIX = path.join(__dirname, '../fixtures/procfs');

async function collect(procfs: string): Promise<string> {
  const out = new Emitter();
  await netstatCollector.create({ config: Config.from(allFlags(), { 'path.procfs': procfs }), log: nullLogger }).collect(out, { signal: new AbortController().signal, now: 0 });
  return out.render();
}
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('parseNetstat', () => {
  it('zips by name, whatever the order', () => {
    const a = parseNetstat('TcpExt: A B C\nTcpExt: 1 2 3\nIpExt: X\nIpExt: 9\n');
    const b = parseNetstat('TcpExt: C A B\nTcpExt: 3 1 2\nIpExt: X\nIpExt: 9\n');
    expect(a).toEqual(b);
    expect(a.get('TcpExt')?.get('B')).toBe(2);
  });
  it('rejects mismatched lines with file:line', () => {
    expect(() => parseNetstat('TcpExt: A B\nTcpExt: 1\n', 'netstat')).toThrow(/netstat:2: TcpExt: 2 names but 1 values/);
    expect(() => parseNetstat('TcpExt: A B\nIpExt: 1 2\n', 'netstat')).toThrow(/netstat:2: expected the values line of "TcpExt"/);
    expect(() => parseNetstat('TcpExt: A\n', 'netstat')).toThrow(/expected the values line/);
    expect(() => parseNetstat('TcpExt: A\nTcpExt: x\n', 'netstat')).toThrow(/TcpExt A: value "x" is not an integer/);
    expect(() => parseNetstat('garbage\n', 'netstat')).toThrow(/netstat:1/);
  });
});

describe('netstat collector', () => {
  it('old 4.9 layout: exports what that kernel has, omits what it lacks', async () => {
    const text = await collect(path.join(FIX, 'old-4.9-offline/proc'));
    expect(value(text, 'flowpath_netstat_tcpext_timeouts_total')).toBe(4242);
    expect(value(text, 'flowpath_netstat_tcpext_backlog_drop_total')).toBe(17);
    expect(value(text, 'flowpath_netstat_tcpext_ofo_queue_total')).toBe(9000);
    expect(value(text, 'flowpath_netstat_tcpext_spurious_rtos_total')).toBe(3);
    expect(value(text, 'flowpath_netstat_tcpext_loss_probes_total')).toBe(55);
    expect(value(text, 'flowpath_netstat_tcpext_orig_data_sent_total')).toBe(123456789012);
    expect(value(text, 'flowpath_netstat_ipext_in_bytes_total')).toBe(98765432109);
    expect(value(text, 'flowpath_netstat_tcp_retrans_segs_total')).toBe(6500);
    expect(value(text, 'flowpath_netstat_tcp_curr_estab')).toBe(12);
    expect(value(text, 'flowpath_netstat_ip_out_discards_total')).toBe(2);
    for (const absent of ['rcvq_drop', 'zero_window_drop', 'wqueue_too_big', 'delivered', 'dsack_recv_segs', 'memory_pressures_seconds', 'backlog_coalesce']) {
      expect(text).not.toContain(`flowpath_netstat_tcpext_${absent}_total `);
    }
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it('captured 6.18: every declared field exists and equals the file, ms chrono in seconds', async () => {
    const procfs = path.join(FIX, 'vm-6.18/proc');
    const groups = readNetstat(procfs);
    const text = await collect(procfs);
    for (const f of NETSTAT_FIELDS) {
      const raw = groups.get(f.group)?.get(f.field);
      expect([f.field, raw]).not.toEqual([f.field, undefined]); // the 6.18 kernel has every field we declare
      expect([f.desc.name, value(text, f.desc.name)]).toEqual([f.desc.name, raw! * f.scale]);
    }
    if (promtoolAvailable()) expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
  });

  it('fails on a missing or malformed file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-netstat-'));
    try {
      fs.cpSync(path.join(FIX, 'old-4.9-offline/proc'), dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'net/snmp'), 'Tcp: A B\nTcp: 1\n');
      await expect(collect(dir)).rejects.toThrow(/snmp:2: Tcp: 2 names but 1 values/);
      fs.rmSync(path.join(dir, 'net/netstat'));
      await expect(collect(dir)).rejects.toThrow(/net\/netstat: cannot read \(ENOENT\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
