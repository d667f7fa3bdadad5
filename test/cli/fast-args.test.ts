// The reconstructor's command line read without yargs: whatever it accepts, yargs (with the
// command's own options, strict) reads the same way; everything else is left to yargs.
import yargs from 'yargs';
import { describe, expect, it } from 'vitest';
import { plainReconstructorArgs, type ReconstructorArgs } from '../../src/cli/fast-args.js';
import { reconstructorOptions } from '../../src/cli/reconstructor.js';
import { prngBelow } from '../helpers/prng.js';

const FIELDS = ['conf', 'once', 'devices', 'partitions', 'verbose', 'worker-index'] as const;

/** What yargs makes of args, in the fields the command uses, or 'refused'. */
async function viaYargs(args: string[]): Promise<Partial<ReconstructorArgs> | 'refused'> {
  let got: Record<string, unknown> | null = null;
  try {
    await yargs(args)
      .scriptName('fragmend')
      .strict()
      .help()
      .version(false)
      .exitProcess(false)
      .command('reconstructor <conf>', 'test', reconstructorOptions, (a) => {
        got = a as Record<string, unknown>;
      })
      .demandCommand(1)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
  } catch {
    return 'refused';
  }
  if (!got) return 'refused';
  const g: Record<string, unknown> = got;
  const out: Record<string, unknown> = {};
  for (const f of FIELDS) if (g[f] !== undefined) out[f] = g[f];
  return out as Partial<ReconstructorArgs>;
}

function fields(a: ReconstructorArgs): Partial<ReconstructorArgs> {
  const out: Record<string, unknown> = {};
  for (const f of FIELDS) if (a[f] !== undefined) out[f] = a[f];
  return out as Partial<ReconstructorArgs>;
}

describe('plainReconstructorArgs', () => {
  it('reads the forms a service manager or cron uses, as yargs reads them', async () => {
    const common = [
      ['reconstructor', '/etc/swift/object-server.conf'],
      ['reconstructor', '/etc/swift/object-server.conf', '--once'],
      ['reconstructor', '--once', '/etc/swift/object-server/1.conf'],
      ['reconstructor', 'conf', '--once', '-d', 'sda,sdb', '-p', '1,2,3', '-v'],
      ['reconstructor', 'conf', '--devices=sdb', '--partitions=7', '--verbose'],
      ['reconstructor', 'conf', '--once', '--worker-index', '2'],
      ['reconstructor', 'conf', '--worker-index=0'],
      ['reconstructor', '007', '-p', '0012'],
    ];
    for (const args of common) {
      const fast = plainReconstructorArgs(args);
      expect(fast, args.join(' ')).not.toBeNull();
      expect(fields(fast!), args.join(' ')).toEqual(await viaYargs(args));
    }
    expect(plainReconstructorArgs(['reconstructor', 'c.conf', '--once', '-d', 'sda'])).toEqual({ conf: 'c.conf', once: true, verbose: false, devices: 'sda' });
  });

  it('leaves everything else to yargs: help, unknown or repeated options, missing values, other commands', () => {
    const others = [
      ['reconstructor', '--help'],
      ['reconstructor', 'conf', '--help'],
      ['reconstructor'],
      ['reconstructor', 'a', 'b'],
      ['reconstructor', 'conf', '--bogus'],
      ['reconstructor', 'conf', '-d'],
      ['reconstructor', 'conf', '-d', '--once'],
      ['reconstructor', 'conf', '-v', '--verbose'],
      ['reconstructor', 'conf', '--no-once'],
      ['reconstructor', 'conf', '--once=false'],
      ['reconstructor', 'conf', '-vd', 'sda'],
      ['reconstructor', 'conf', '--', '--once'],
      ['reconstructor', 'conf', '--worker-index', 'x'],
      ['object-server', 'conf'],
      ['codec', 'encode'],
      [],
    ];
    for (const args of others) expect(plainReconstructorArgs(args), args.join(' ')).toBeNull();
  });

  it('on random command lines, never reads anything differently from yargs', async () => {
    const tokens = ['conf', 'other.conf', '--once', '-v', '--verbose', '-d', 'sda', '--devices=sdb', '-p', '3,4', '--partitions=5', '--worker-index', '1', '--worker-index=2', '-x', '--once=1', '', '-', '12'];
    const rnd = prngBelow(0x1234567);
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const args = ['reconstructor', ...Array.from({ length: rnd(6) }, () => tokens[rnd(tokens.length)]!)];
      const fast = plainReconstructorArgs(args);
      if (!fast) continue;
      accepted++;
      expect(fields(fast), JSON.stringify(args)).toEqual(await viaYargs(args));
    }
    expect(accepted).toBeGreaterThan(20);
  });
});
