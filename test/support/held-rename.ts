// Run inside `ip netns exec NS` (its own /sys) by test/live/held-files.test.ts: shows that a held sysfs
// descriptor follows a renamed device, and that the device listing drops it so a new device with the old
// name is read. Prints one JSON line.
import { execFileSync } from 'child_process';
import { listDevices } from '../../src/sources/devices';
import { heldCount, readWhole } from '../../src/sources/procfs/read';

async function main(): Promise<void> {
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: 'ignore' });
  const file = '/sys/class/net/fa/ifindex';
  await listDevices('/sys');
  const first = readWhole(file).trim();
  const held = heldCount();
  ip('link', 'set', 'fa', 'name', 'fb');
  ip('link', 'add', 'fa', 'type', 'veth', 'peer', 'name', 'fc');
  const stale = readWhole(file).trim(); // still the renamed device: nothing told the cache yet
  const devices = await listDevices('/sys');
  const fresh = readWhole(file).trim();
  const want = String(devices.find((d) => d.name === 'fa')!.ifindex);
  process.stdout.write(JSON.stringify({ first, held, stale, fresh, want }) + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
