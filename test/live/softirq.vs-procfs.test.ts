// The softirq collector on the live kernel against independent reads of the same files with shell
// tools (bash hex arithmetic, awk, getconf, ps), taken before and after ours: every counter must lie
// between the two reads. Then loopback traffic must move NET_RX, softnet processed and CPU time.
import { execFileSync } from 'child_process';
import { softirqCollector } from '../../src/collectors/softirq';
import { collectLive, expectBracketed, loopbackTransfer } from './node-support';

const sh = (script: string) => execFileSync('bash', ['-c', script], { encoding: 'utf8' });

/** softnet_stat via bash: "cpu processed dropped squeeze rps flowlimit" per line (CPU = column 13 or line index). */
function softnetByShell(): Map<number, number[]> {
  const out = sh('i=0; while read -a c; do cpu=$i; [ ${#c[@]} -ge 13 ] && cpu=$((16#${c[12]})); echo $cpu $((16#${c[0]})) $((16#${c[1]})) $((16#${c[2]})) $((16#${c[9]})) $((16#${c[10]})); i=$((i+1)); done < /proc/net/softnet_stat');
  const m = new Map<number, number[]>();
  for (const l of out.trim().split('\n')) {
    const [cpu, ...v] = l.split(' ').map(Number);
    m.set(cpu, v);
  }
  return m;
}

/** /proc/softirqs via awk: "CPU VECTOR COUNT". */
function softirqsByShell(): Map<string, number> {
  const out = sh(`awk 'NR==1{for(i=1;i<=NF;i++)cpu[i]=substr($i,4);next}{v=$1;sub(":","",v);for(i=2;i<=NF;i++)print cpu[i-1], v, $i}' /proc/softirqs`);
  return new Map(out.trim().split('\n').map((l) => {
    const [cpu, v, n] = l.split(' ');
    return [`${cpu}/${v}`, Number(n)];
  }));
}

/** /proc/stat cpuN softirq and irq in seconds via awk + getconf CLK_TCK. */
function statByShell(): Map<string, number> {
  const hz = Number(sh('getconf CLK_TCK'));
  const out = sh(`awk '/^cpu[0-9]/{print substr($1,4), $7, $8, $2, $5}' /proc/stat`);
  const m = new Map<string, number>();
  for (const l of out.trim().split('\n')) {
    const [cpu, irq, softirq, user, idle] = l.split(' ').map(Number);
    m.set(`${cpu}/irq`, irq / hz).set(`${cpu}/softirq`, softirq / hz).set(`${cpu}/user`, user / hz).set(`${cpu}/idle`, idle / hz);
  }
  return m;
}

/** ksoftirqd/N utime+stime in seconds via ps + awk on /proc/PID/stat. */
function ksoftirqdByShell(): Map<number, number> {
  const hz = Number(sh('getconf CLK_TCK'));
  const out = sh(`ps -e -o pid=,comm= | awk '$2 ~ /^ksoftirqd\\// {split($2,a,"/"); print a[2], $1}' | while read cpu pid; do echo $cpu $(awk '{print $14+$15}' /proc/$pid/stat); done`);
  return new Map(out.trim().split('\n').map((l) => {
    const [cpu, ticks] = l.split(' ').map(Number);
    return [cpu, ticks / hz];
  }));
}

describe('softirq collector vs independent reads of /proc', () => {
  it('every softnet/softirqs/stat/ksoftirqd value lies between two independent reads', async () => {
    const sn1 = softnetByShell();
    const si1 = softirqsByShell();
    const st1 = statByShell();
    const ks1 = ksoftirqdByShell();
    const { series, text } = await collectLive(softirqCollector);
    const sn2 = softnetByShell();
    const si2 = softirqsByShell();
    const st2 = statByShell();
    const ks2 = ksoftirqdByShell();

    expect(sn1.size).toBeGreaterThan(0);
    const fams = ['processed_packets_total', 'dropped_packets_total', 'time_squeeze_total', 'received_rps_total', 'flow_limit_count_total'];
    for (const [cpu, a] of sn1) {
      const b = sn2.get(cpu)!;
      fams.forEach((f, i) => expectBracketed(`softnet ${f} cpu ${cpu}`, a[i], series.get(`flowpath_softnet_${f}{cpu="${cpu}"}`), b[i]));
    }
    for (const [k, a] of si1) {
      const [cpu, vec] = k.split('/');
      expectBracketed(`softirqs ${k}`, a, series.get(`flowpath_softirqs_total{cpu="${cpu}",vector="${vec}"}`), si2.get(k)!);
    }
    for (const [k, a] of st1) {
      const [cpu, mode] = k.split('/');
      expectBracketed(`stat ${k}`, a - 1e-9, series.get(`flowpath_cpu_seconds_total{cpu="${cpu}",mode="${mode}"}`), st2.get(k)! + 1e-9);
    }
    expect(ks1.size).toBeGreaterThan(0);
    for (const [cpu, a] of ks1) expectBracketed(`ksoftirqd/${cpu}`, a - 1e-9, series.get(`flowpath_ksoftirqd_cpu_seconds_total{cpu="${cpu}"}`), ks2.get(cpu)! + 1e-9);
    expect(text).toContain('flowpath_softnet_backlog_packets{cpu="0"}');
  });

  it('loopback traffic moves NET_RX, softnet processed and CPU time', async () => {
    const before = (await collectLive(softirqCollector)).series;
    await loopbackTransfer(64 << 20);
    const after = (await collectLive(softirqCollector)).series;
    const sum = (s: Map<string, number>, re: RegExp) => [...s].filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
    expect(sum(after, /^flowpath_softirqs_total\{.*vector="NET_RX"/) - sum(before, /^flowpath_softirqs_total\{.*vector="NET_RX"/)).toBeGreaterThan(0);
    expect(sum(after, /^flowpath_softnet_processed_packets_total/) - sum(before, /^flowpath_softnet_processed_packets_total/)).toBeGreaterThan(100);
    expect(sum(after, /^flowpath_cpu_seconds_total/) - sum(before, /^flowpath_cpu_seconds_total/)).toBeGreaterThan(0);
  });
});
