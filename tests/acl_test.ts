/** parseCidr() and AccessList, in-process, as tables. */

import assert from "node:assert/strict";
import { AccessList, parseCidr } from "../lib/serve/acl.ts";

Deno.test("parseCidr() reads blocks and single addresses, and refuses the rest", () => {
  const good: [string, number[], number][] = [
    ["192.0.2.0/24", [192, 0, 2, 0], 24],
    ["192.0.2.7", [192, 0, 2, 7], 32],
    ["0.0.0.0/0", [0, 0, 0, 0], 0],
    ["2001:db8::/32", [0x20, 0x01, 0x0d, 0xb8, ...new Array(12).fill(0)], 32],
    ["::1", [...new Array(15).fill(0), 1], 128],
    ["::ffff:192.0.2.0/120", [192, 0, 2, 0], 24], // an IPv4-mapped block is the IPv4 block
  ];
  for (const [text, bytes, prefix] of good) {
    const cidr = parseCidr(text);
    assert.ok(cidr, text);
    assert.deepEqual([...cidr.bytes], bytes, text);
    assert.equal(cidr.prefix, prefix, text);
  }
  for (
    const text of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "010.0.0.0/8", "host", ""]
  ) {
    assert.equal(parseCidr(text), undefined, text);
  }
});

Deno.test("AccessList.permits() lets deny win, allow restrict, and fails closed", () => {
  const list = (allow: string[], deny: string[]) =>
    new AccessList({
      allow: allow.map((t) => parseCidr(t)!),
      deny: deny.map((t) => parseCidr(t)!),
    });
  const cases: [AccessList, string, boolean][] = [
    [list([], []), "203.0.113.9", true],
    [list([], []), "not an address", true], // no rule: nothing to match
    [list([], ["10.0.0.0/8"]), "10.1.2.3", false],
    [list([], ["10.0.0.0/8"]), "::ffff:10.1.2.3", false], // mapped peers are their IPv4 address
    [list([], ["10.0.0.0/8"]), "11.0.0.1", true],
    [list([], ["10.0.0.0/8"]), "not an address", false], // any rule: fail closed
    [list(["192.0.2.0/24"], []), "192.0.2.200", true],
    [list(["192.0.2.0/24"], []), "192.0.3.1", false],
    [list(["192.0.2.0/24"], ["192.0.2.128/25"]), "192.0.2.200", false],
    [list(["2001:db8::/32"], []), "2001:DB8:0::5", true],
    [list(["2001:db8::/32"], []), "2001:db9::5", false],
    [list(["0.0.0.0/0"], []), "::1", false], // families do not mix
  ];
  for (const [acl, ip, expected] of cases) assert.equal(acl.permits(ip), expected, ip);
});

Deno.test("AccessList.matches() is for trusted sets: only allow blocks, unparseable never", () => {
  const trusted = new AccessList({ allow: [parseCidr("127.0.0.0/8")!] });
  assert.equal(trusted.matches("127.0.0.1"), true);
  assert.equal(trusted.matches("::ffff:127.0.0.1"), true);
  assert.equal(trusted.matches("10.0.0.1"), false);
  assert.equal(trusted.matches("garbage"), false);
});
