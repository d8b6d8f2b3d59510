import { describe, expect, it } from '@jest/globals';
import { executedPrograms, parseExecTrace, shellExecs } from './exec-trace.js';

// Lines as strace 6.1 writes them with -f -o FILE (pid first), including a PATH search and a split call.
const TRACE = [
  '4711  execve("/usr/local/go/bin/ip", ["ip", "-j", "link", "show"], 0x383d4010 /* 35 vars */) = -1 ENOENT (No such file or directory)',
  '4711  execve("/usr/sbin/ip", ["ip", "-j", "link", "show"], 0x383d4010 /* 35 vars */) = 0',
  '4712  execve("/usr/sbin/iptables-restore", ["iptables-restore", "--noflush", "-w", "5"], 0x1 /* 35 vars */ <unfinished ...>',
  '4713  execve("/usr/bin/setpriv", ["setpriv", "--pdeathsig", "KILL", "--", "keepalived", "-f", "/run/x/keepalived.conf"], 0x2 /* 9 vars */) = 0',
  '4712  <... execve resumed>)               = 0',
  '4713  execve("/usr/sbin/keepalived", ["keepalived", "-f", "/run/x/keepalived.conf"], 0x3 /* 9 vars */) = 0',
  '4714  +++ exited with 0 +++',
].join('\n');

describe('parseExecTrace', () => {
  it('reads every exec attempt with its argv and result, joining a split call', () => {
    const records = parseExecTrace(TRACE);
    expect(records.map((r) => [r.pid, r.path, r.result ?? null, r.errno ?? null])).toEqual([
      [4711, '/usr/local/go/bin/ip', -1, 'ENOENT'],
      [4711, '/usr/sbin/ip', 0, null],
      [4712, '/usr/sbin/iptables-restore', 0, null],
      [4713, '/usr/bin/setpriv', 0, null],
      [4713, '/usr/sbin/keepalived', 0, null],
    ]);
    expect(records[3]!.argv).toEqual(['setpriv', '--pdeathsig', 'KILL', '--', 'keepalived', '-f', '/run/x/keepalived.conf']);
    expect(executedPrograms(records)).toEqual({ ip: 1, 'iptables-restore': 1, keepalived: 1, setpriv: 1 });
  });

  it('finds no shell in a trace without one', () => {
    expect(shellExecs(parseExecTrace(TRACE))).toEqual([]);
  });

  it('finds a shell by program path, by argv[0], and even when the exec failed', () => {
    const trace = [
      '10  execve("/bin/sh", ["sh", "-c", "iptables-restore < /tmp/x"], 0x1 /* 3 vars */) = 0',
      '11  execve("/usr/bin/env", ["bash", "-c", "true"], 0x1 /* 3 vars */) = 0',
      '12  execve("/usr/local/bin/dash", ["dash"], 0x1 /* 3 vars */) = -1 ENOENT (No such file or directory)',
      '13  execve("/usr/sbin/shorewall", ["shorewall"], 0x1 /* 3 vars */) = 0',
    ].join('\n');
    expect(shellExecs(parseExecTrace(trace)).map((r) => r.pid)).toEqual([10, 11, 12]);
  });

  it('keeps quotes and brackets inside arguments', () => {
    const [r] = parseExecTrace('7  execve("/usr/sbin/ip", ["ip", "a \\"b\\" [c]"], 0x1 /* 1 vars */) = 0');
    expect(r!.argv).toEqual(['ip', 'a "b" [c]']);
  });
});
