import { renderBreakdown, renderProgress, renderVerdict } from '../../../src/diagnosis/render';
import { diagnose } from '../../../src/diagnosis/verdict';
import { node, synthFlow, SIG, MBIT } from './synth';

describe('renderVerdict', () => {
  const v = diagnose({ sender: { flow: synthFlow(SIG.pace_cubic, { goodputBps: 100 * MBIT }), nodeSummary: node() } });
  const text = renderVerdict(v, { senderLabel: 'this node' });

  it('draws every hop of the path in order, with its status', () => {
    const order = ['sender socket', 'sender TCP', 'qdisc / internal port', 'OVS (sender)', 'NIC TX', 'link', 'NIC RX / RX CPU', 'OVS (receiver)', 'internal port (receiver)', 'receiver TCP', 'receiver socket'];
    let at = -1;
    for (const h of order) {
      const i = text.indexOf(h, at + 1);
      expect(i).toBeGreaterThan(at);
      at = i;
    }
    expect(text).toMatch(/sender TCP\s+LIMITING\s+pacing held at max_pacing_rate 100\.0 Mbit\/s/);
    expect(text).toMatch(/OVS \(sender\)\s+n\/a/);
    expect(text).toMatch(/NIC RX \/ RX CPU\s+no data\s+receiver not observed \(use --peer\)/);
    expect(text).toContain('SENDER (this node)');
  });

  it('states the verdict with its next check, then the ranked findings with evidence', () => {
    expect(text).toContain('VERDICT: limited at sender TCP (pacing_capped)');
    expect(text).toMatch(/next: Find who sets SO_MAX_PACING_RATE/);
    expect(text).toMatch(/1\. \[limiting\] sender TCP \/ pacing-capped/);
    expect(text).toMatch(/evidence: .*max_pacing_rate_bps=100000000/);
    expect(text).not.toContain('\x1b['); // no colour unless asked
    expect(renderVerdict(v, { color: true })).toContain('\x1b[1;31m');
  });

  it('says so when nothing limits', () => {
    const ok = diagnose({ sender: { flow: synthFlow(SIG.base_bbr_veth, { goodputBps: 11000 * MBIT }), nodeSummary: node() } });
    expect(renderVerdict(ok)).toContain('VERDICT: no hop limits the flow');
  });

  it('time breakdown and progress bar', () => {
    const f = synthFlow(SIG.app, { busy: 0.25 });
    expect(renderBreakdown(f)).toMatch(/^idle 75\.\d% █+ {3}app 2\d\.\d%$/);
    expect(renderProgress(2.5, 10, 50, 10)).toBe('[███░░░░░░░] 2.5/10.0 s  50 samples');
    expect(renderProgress(12, 10, 0, 4)).toBe('[████] 12.0/10.0 s  0 samples');
  });
});
