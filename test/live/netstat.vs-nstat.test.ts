// The netstat collector against iproute2's nstat (absolute counters, history untouched): each counter
// lies between an nstat read before and one after ours; TCP counters move with loopback traffic.
import { execFileSync } from 'child_process';
import { NETSTAT_FIELDS, netstatCollector } from '../../src/collectors/netstat';
import { collectLive, expectBracketed, loopbackTransfer } from './node-support';

function nstat(): Record<string, number> {
  const out = execFileSync('nstat', ['-a', '-z', '-s', '-j'], { encoding: 'utf8', env: { ...process.env, NSTAT_HISTORY: '/dev/null' } });
  return (JSON.parse(out) as { kernel: Record<string, number> }).kernel;
}

describe('netstat collector vs nstat', () => {
  it('every exported counter lies between two nstat reads', async () => {
    const a = nstat();
    const { series } = await collectLive(netstatCollector);
    const b = nstat();
    let checked = 0;
    for (const f of NETSTAT_FIELDS) {
      if (f.desc.kind !== 'counter') continue;
      const key = `${f.group}${f.field}`;
      expect([key, key in a]).toEqual([key, true]);
      let ours = series.get(f.desc.name);
      // nstat of iproute2 6.1 prints 64-bit MIB counters modulo 2^32 (e.g. IpExt InOctets); compare on
      // its terms when our exact value is beyond that.
      if (ours !== undefined && ours >= 2 ** 32 && b[key] < 2 ** 32) ours = ours % 2 ** 32;
      expectBracketed(f.desc.name, a[key] * f.scale, ours, b[key] * f.scale);
      checked++;
    }
    expect(checked).toBeGreaterThan(60);
  });

  it('loopback traffic moves the TCP segment and delivery counters', async () => {
    const before = (await collectLive(netstatCollector)).series;
    await loopbackTransfer(16 << 20);
    const after = (await collectLive(netstatCollector)).series;
    for (const n of ['flowpath_netstat_tcp_out_segs_total', 'flowpath_netstat_tcp_in_segs_total', 'flowpath_netstat_tcpext_orig_data_sent_total', 'flowpath_netstat_tcpext_delivered_total', 'flowpath_netstat_ipext_out_bytes_total']) {
      expect([n, after.get(n)! - before.get(n)! > 0]).toEqual([n, true]);
    }
    expect(after.get('flowpath_netstat_ipext_out_bytes_total')! - before.get('flowpath_netstat_ipext_out_bytes_total')!).toBeGreaterThanOrEqual(16 << 20);
  });
});
