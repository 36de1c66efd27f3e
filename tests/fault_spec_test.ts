/** `--fault` specs: every key's accepted forms and every refusal, without a process. */

import assert from "node:assert/strict";
import {
  actsOnTcp,
  actsOnUdp,
  type FaultProfile,
  FaultSpecError,
  parseFaultRule,
  parseFaultSpec,
  profileFor,
} from "../lib/serve/fault_spec.ts";

const GOOD: [string, Partial<FaultProfile>][] = [
  ["latency=100ms", { latency: 100 }],
  ["latency=0", { latency: 0 }],
  ["latency=1.5s,jitter=20ms", { latency: 1500, jitter: 20 }],
  ["jitter=5ms", { jitter: 5 }],
  ["rate=64KiB", { rate: 65536 }],
  ["rate=1000", { rate: 1000 }],
  ["slice=1", { slice: 1 }],
  ["stall-after=64KiB", { stallAfter: 65536 }],
  ["reset-after=1MiB", { resetAfter: 1048576 }],
  ["close-after=1000", { closeAfter: 1000 }],
  ["close-after=0", { closeAfter: 0 }],
  ["refuse", { refuse: true }],
  ["refuse,p=0.25", { refuse: true, p: 0.25 }],
  ["blackhole", { blackhole: true }],
  ["latency=1ms,p=1", { latency: 1, p: 1 }],
  ["latency=1ms,p=.5", { latency: 1, p: 0.5 }],
  ["drop=0.5", { drop: 0.5 }],
  ["drop=1,duplicate=0", { drop: 1, duplicate: 0 }],
  ["duplicate=0.1,delay=100ms", { duplicate: 0.1, delay: 100 }],
  [" latency = 10ms , rate=1KiB ", { latency: 10, rate: 1024 }],
  ["rate=16KiB,latency=500ms,slice=512,close-after=1MiB", {
    rate: 16384,
    latency: 500,
    slice: 512,
    closeAfter: 1048576,
  }],
];

for (const [spec, expected] of GOOD) {
  Deno.test(`fault spec ${spec} parses`, () => {
    const profile = parseFaultSpec(spec);
    for (const [key, value] of Object.entries(expected)) {
      assert.equal(profile[key as keyof FaultProfile], value, key);
    }
  });
}

const BAD: [string, string][] = [
  ["", "the profile is empty: give keys such as latency=100ms or refuse"],
  ["latency=fast", "latency takes a duration such as 50ms"],
  ["latency=100", "latency takes a duration such as 50ms"],
  ["latency", "latency takes a duration such as 50ms"],
  ["latency=", "latency takes a duration such as 50ms"],
  ["latency=-5ms", "latency takes a duration such as 50ms"],
  ["latency=1000h", "latency takes a duration such as 50ms"],
  ["jitter=x", "jitter takes a duration such as 20ms"],
  ["delay=1", "delay takes a duration such as 100ms"],
  ["rate=0", "rate takes a size per second such as 64KiB"],
  ["rate=fast", "rate takes a size per second such as 64KiB"],
  ["rate=1.5", "rate takes a size per second such as 64KiB"],
  ["slice=0", "slice takes a size such as 1 or 512"],
  ["stall-after=-1", "stall-after takes a size such as 64KiB"],
  ["reset-after=lots", "reset-after takes a size such as 1MiB"],
  ["close-after=1.5", "close-after takes a size such as 1000"],
  ["refuse=yes", "refuse takes no value"],
  ["blackhole=1", "blackhole takes no value"],
  ["latency=1ms,p=0", "p takes a fraction above 0 and at most 1, such as 0.5"],
  ["latency=1ms,p=1.5", "p takes a fraction above 0 and at most 1, such as 0.5"],
  ["latency=1ms,p=50%", "p takes a fraction above 0 and at most 1, such as 0.5"],
  ["drop=2", "drop takes a fraction from 0 to 1, such as 0.5"],
  ["duplicate=-0.1", "duplicate takes a fraction from 0 to 1, such as 0.1"],
  ["latency=1ms,latency=2ms", "latency is given twice"],
  ["refuse,refuse", "refuse is given twice"],
  ["latency=1ms,,rate=1", "an empty key: separate keys with one comma"],
  ["refuse,blackhole", "refuse and blackhole contradict: refuse resets, blackhole keeps open"],
  [
    "refuse,latency=1ms",
    "refuse and latency contradict: refuse never echoes, so there is nothing to shape",
  ],
  [
    "blackhole,rate=1KiB",
    "blackhole and rate contradict: blackhole never echoes, so there is nothing to shape",
  ],
  [
    "blackhole,close-after=5",
    "blackhole and close-after contradict: blackhole never echoes, so there is nothing to shape",
  ],
  [
    "stall-after=1,close-after=5",
    "stall-after and close-after contradict: each ends the echo, so only the first to come would act",
  ],
  [
    "reset-after=1,close-after=5",
    "reset-after and close-after contradict: each ends the echo, so only the first to come would act",
  ],
  ["p=0.5", "p chooses connections for the TCP keys: give one with it"],
  ["p=0.5,drop=0.1", "p chooses connections for the TCP keys: give one with it"],
];

for (const [spec, message] of BAD) {
  Deno.test(`fault spec '${spec}' is refused: ${message}`, () => {
    assert.throws(() => parseFaultSpec(spec), (error) => {
      assert.ok(error instanceof FaultSpecError);
      assert.equal(error.message, message);
      return true;
    });
  });
}

Deno.test("an unknown key names itself for the command line's hint", () => {
  assert.throws(() => parseFaultSpec("latncy=5ms"), (error) => {
    assert.ok(error instanceof FaultSpecError);
    assert.equal(error.unknownKey, "latncy");
    assert.match(error.message, /^unknown key latncy; keys: latency, jitter, /);
    return true;
  });
});

Deno.test("PORT: picks the port; a profile for a port wins over one for every port", () => {
  const some = parseFaultRule("7001:latency=5ms");
  assert.equal(some.port, 7001);
  const every = parseFaultRule("rate=1KiB");
  assert.equal(every.port, undefined);
  assert.equal(profileFor([every, some], 7001), some.profile);
  assert.equal(profileFor([every, some], 7002), every.profile);
  assert.equal(profileFor([some], 7002), undefined);
  assert.throws(() => parseFaultRule("70000:refuse"), /port 70000 is out of range \(1-65535\)/);
  assert.throws(() => parseFaultRule("0:refuse"), /port 0 is out of range/);
});

Deno.test("a profile names itself in one canonical line, and says what it acts on", () => {
  const profile = parseFaultSpec(" latency = 10ms , drop=0.5 ");
  assert.equal(profile.name, "latency=10ms,drop=0.5");
  assert.ok(actsOnTcp(profile) && actsOnUdp(profile));
  assert.ok(!actsOnTcp(parseFaultSpec("drop=0.5")));
  assert.ok(!actsOnUdp(parseFaultSpec("refuse")));
});
