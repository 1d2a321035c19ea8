// The pieces of the control surface that need no running master: reading the
// kernel's accept queues, and the prompt's completion.
import { describe, expect, it } from 'vitest'
import { complete } from '../src/cli/ctl-prompt.ts'
import { parseProcNetTcp, parseSsUnix } from '../src/net/accept-queue.ts'

describe('accept-queue readings', () => {
  it('/proc/net/tcp: rx_queue of LISTEN sockets (state 0A) by inode; connections are skipped', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F40 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:1F40 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1',
      '   2: 00000000:0050 00000000:0000 0A 00000000:0000001A 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0',
    ].join('\n')
    expect(parseProcNetTcp(text)).toEqual([
      ['4242', 3],
      ['99', 26],
    ])
  })

  it('ss -xlnH: Recv-Q of listening unix sockets by inode, paths with spaces included', () => {
    const text = [
      'u_str LISTEN 2      511    /tmp/x/q.sock 146591 * 0',
      'u_str LISTEN 0      4096   /run/my app/s.sock 77 * 0',
      'u_seq LISTEN 5      128    @abstract 12 * 0',
    ].join('\n')
    expect(parseSsUnix(text)).toEqual([
      ['146591', 2],
      ['77', 0],
      ['12', 5],
    ])
  })
})

describe('completion at the prompt', () => {
  it('completes the word under the cursor from the commands that fit the words before it', () => {
    expect(complete('sh')).toEqual([['show ', 'shutdown '], 'sh'])
    expect(complete('sho')).toEqual([['show '], 'sho'])
    expect(complete('show w')).toEqual([['workers '], 'w'])
    expect(complete('worker ')[0].sort()).toEqual(['add ', 'kill ', 'remove '])
    expect(complete('shutdown q')).toEqual([['quick '], 'q'])
    expect(complete('frob')).toEqual([[], 'frob'])
  })
})
