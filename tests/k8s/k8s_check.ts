/**
 * `deno task k8s:check`: the Helm chart in deploy/helm/echod, checked
 * without a cluster. helm (pinned, from the npm registry) lints it and
 * renders it for the default values and for ci/everything-values.yaml;
 * every object rendered must pass the Kubernetes API schemas, unknown
 * fields included, and every pod the restricted Pod Security Standard; the
 * plain manifests for `kubectl apply` must be the chart's output; bad
 * values must fail at install. Named `*_check.ts`, not `*_test.ts`, so the
 * main suite (and the Windows lane) do not run it: it needs a Linux x86_64
 * helm. When helm cannot be had, the tests that need it fail and say why.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CHART,
  EVERYTHING_VALUES,
  helm,
  type K8sObject,
  MANIFESTS,
  manifestsFromChart,
  parseObjects,
  renderChart,
} from "../../scripts/k8s/chart.ts";
import { restrictedViolations } from "../../scripts/k8s/restricted.ts";
import { SCHEMA_VERSION, schemaErrors, typeErrors } from "../../scripts/k8s/schema.ts";
import { HELM_PACKAGE, helmPath, ROOT } from "../../scripts/k8s/tools.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const RENDERS: { label: string; args: string[]; kinds: string[] }[] = [
  { label: "default values", args: [], kinds: ["Deployment", "Service"] },
  {
    label: "ci/everything-values.yaml",
    args: ["-f", EVERYTHING_VALUES],
    kinds: ["Deployment", "PodDisruptionBudget", "Service", "Service", "ServiceMonitor"],
  },
];

function find(objects: K8sObject[], kind: string, name?: string): Json {
  const found = objects.find((o) =>
    o.kind === kind && (name === undefined || o.metadata.name === name)
  );
  assert.ok(found, `no ${kind} ${name ?? ""} rendered`);
  return found;
}

function envOf(deployment: Json): Map<string, Json> {
  const container = deployment.spec.template.spec.containers[0];
  return new Map(container.env.map((e: Json) => [e.name, e.value ?? e.valueFrom]));
}

/** The plain manifests as committed: a valid Deployment to break on purpose. */
function committed(): K8sObject[] {
  return parseObjects(Deno.readTextFileSync(`${ROOT}/${MANIFESTS}`));
}

Deno.test(`helm ${HELM_PACKAGE.helmVersion} from the npm package ${HELM_PACKAGE.name}@${HELM_PACKAGE.version} is at hand`, async () => {
  console.log(`helm: ${await helmPath()}`);
});

for (const file of [undefined, EVERYTHING_VALUES]) {
  Deno.test(`helm ${HELM_PACKAGE.helmVersion} lint --strict passes with ${file ?? "the default values"}`, async () => {
    const result = await helm(["lint", "--strict", CHART, ...(file ? ["-f", file] : [])]);
    assert.ok(result.success, `helm lint failed:\n${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });
}

for (const { label, args, kinds } of RENDERS) {
  Deno.test(`${label}: every object passes the ${SCHEMA_VERSION} schemas, unknown fields included`, async () => {
    const objects = parseObjects(await renderChart(args));
    assert.deepEqual(objects.map((o) => o.kind).sort(), kinds);
    assert.deepEqual(schemaErrors(objects), []);
    assert.deepEqual(await typeErrors(objects, label), []);
    console.log(`${label}: ${objects.length} objects valid (${kinds.join(", ")})`);
  });

  Deno.test(`${label}: the pod follows the restricted Pod Security Standard`, async () => {
    const objects = parseObjects(await renderChart(args));
    assert.deepEqual(objects.flatMap(restrictedViolations), []);
    const pod = find(objects, "Deployment").spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, false);
    // A Service named echod would otherwise set ECHOD_PORT=tcp://... in the pod.
    assert.equal(pod.enableServiceLinks, false);
  });
}

Deno.test(`${MANIFESTS} is the chart's output for its default values`, async () => {
  const fresh = await manifestsFromChart();
  const file = Deno.readTextFileSync(`${ROOT}/${MANIFESTS}`);
  assert.ok(file === fresh, `${MANIFESTS} differs from the chart: run \`deno task k8s:render\``);
});

Deno.test("the chart's appVersion is echod's version", () => {
  const chart = Deno.readTextFileSync(`${ROOT}/${CHART}/Chart.yaml`);
  const version = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).version;
  assert.match(chart, new RegExp(`^appVersion: "${version.replaceAll(".", "\\.")}"$`, "m"));
});

Deno.test("the values reach echod as ECHOD_* variables, probes and ports", async () => {
  const plain = parseObjects(await renderChart());
  const plainEnv = envOf(find(plain, "Deployment"));
  for (const name of ["POD_NAME", "POD_NAMESPACE", "NODE_NAME", "POD_IP"]) {
    assert.ok(plainEnv.get(name)?.fieldRef, `${name} is not from the downward API`);
  }
  assert.equal(plainEnv.get("ECHOD_PORT"), "40007");
  assert.equal(plainEnv.get("ECHOD_METRICS"), "[::]:9090");
  assert.equal(plainEnv.has("ECHOD_UDP"), false);
  assert.equal(plainEnv.has("ECHOD_GREETING"), false);
  assert.deepEqual(find(plain, "Service").spec.ports.map((p: Json) => p.protocol), ["TCP"]);

  const all = parseObjects(await renderChart(["-f", EVERYTHING_VALUES]));
  const deployment = find(all, "Deployment");
  const env = envOf(deployment);
  assert.equal(env.get("ECHOD_PORT"), "7007");
  assert.equal(env.get("ECHOD_UDP"), "true");
  assert.equal(env.get("ECHOD_TLS_CERT"), "/etc/echod/tls/tls.crt");
  assert.equal(env.get("ECHOD_TLS_KEY"), "/etc/echod/tls/tls.key");
  assert.equal(env.get("ECHOD_TLS_PORT"), "7443");
  assert.equal(env.get("ECHOD_PROXY_PROTOCOL"), "true");
  assert.equal(env.get("ECHOD_TRUSTED_PROXY"), "10.0.0.0/8,fd00::/8");
  assert.match(env.get("ECHOD_GREETING"), /\{env:POD_NAME\}/);
  assert.equal(env.get("ECHOD_SHUTDOWN_DELAY"), "10s");
  assert.equal(env.get("ECHOD_DRAIN_TIMEOUT"), "20s");
  assert.equal(env.get("ECHOD_UDP_RATE"), "200"); // extraEnv
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  assert.deepEqual(container.args, ["--stats-interval", "30s"]);
  assert.deepEqual(pod.volumes, [{ name: "tls", secret: { secretName: "echod-tls" } }]);
  assert.equal(container.volumeMounts[0].mountPath, "/etc/echod/tls");
  for (
    const [probe, path] of [["startupProbe", "/healthz"], ["livenessProbe", "/healthz"], [
      "readinessProbe",
      "/readyz",
    ]]
  ) {
    assert.deepEqual(container[probe].httpGet, { path, port: "metrics" }, probe);
  }
  assert.ok(container.ports.some((p: Json) => p.name === "metrics" && p.containerPort === 9091));
  const service = find(all, "Service", "echod");
  assert.deepEqual(
    service.spec.ports.map((p: Json) => `${p.name} ${p.port}/${p.protocol} ${p.nodePort}`),
    ["echo 7007/TCP 30007", "echo-udp 7007/UDP 30007", "tls 7443/TCP 30443"],
  );
  assert.equal(find(all, "Service", "echod-metrics").spec.ports[0].port, 9091);
});

Deno.test("terminationGracePeriodSeconds exceeds the shutdown delay plus the drain timeout", async () => {
  const grace = async (...set: string[]) => {
    const objects = parseObjects(await renderChart(set.flatMap((s) => ["--set", s])));
    return find(objects, "Deployment").spec.template.spec.terminationGracePeriodSeconds;
  };
  assert.equal(await grace(), 5 + 10 + 5);
  assert.equal(await grace("shutdown.delaySeconds=30", "shutdown.drainTimeoutSeconds=60"), 95);
  assert.equal(await grace("terminationGracePeriodSeconds=16"), 16);
  const tooShort = await helm([
    "template",
    "echod",
    CHART,
    "--set",
    "terminationGracePeriodSeconds=15",
  ]);
  assert.equal(tooShort.success, false);
  assert.match(tooShort.stderr, /terminationGracePeriodSeconds 15 must be more than .* \(15\)/);
});

Deno.test("bad values fail at install, before anything is rendered", async () => {
  const install = (...set: string[]) =>
    helm(["install", "echod", CHART, "--dry-run=client", ...set.flatMap((s) => ["--set", s])]);
  assert.ok((await install()).success, "the default values do not install");
  const bad: [string, string][] = [
    ["replicaCount=-1", "/replicaCount"],
    ["echo.port=70000", "/echo/port"],
    ["log.level=loud", "/log/level"],
    ["replicas=3", "'replicas' not allowed"],
    ["service.type=ExternalName", "/service/type"],
    ["echo.idleTimeout=5minutes", "/echo/idleTimeout"],
    ["shutdown.delaySeconds=-1", "/shutdown/delaySeconds"],
    ["tls.enabled=true", "/tls/secretName"],
    ["proxyProtocol.enabled=true", "/proxyProtocol/trustedProxies"],
    ["image.pullPolicy=Sometimes", "/image/pullPolicy"],
  ];
  for (const [set, says] of bad) {
    const result = await install(set);
    assert.equal(result.success, false, `--set ${set} was accepted`);
    assert.ok(
      result.stderr.includes("values don't meet the specifications of the schema") &&
        result.stderr.includes(says),
      `--set ${set}: ${result.stderr}`,
    );
  }
});

Deno.test("the restricted check finds each rule broken", () => {
  const breaks: [string, (pod: Json, container: Json) => void][] = [
    ["hostNetwork", (pod) => pod.hostNetwork = true],
    ["hostPID", (pod) => pod.hostPID = true],
    ["hostPath", (pod) => pod.volumes = [{ name: "root", hostPath: { path: "/" } }]],
    ["privileged", (_, c) => c.securityContext.privileged = true],
    ["allowPrivilegeEscalation", (_, c) => delete c.securityContext.allowPrivilegeEscalation],
    ["readOnlyRootFilesystem", (_, c) => c.securityContext.readOnlyRootFilesystem = false],
    [
      "runAsNonRoot",
      (pod, c) => (delete pod.securityContext.runAsNonRoot, delete c.securityContext.runAsNonRoot),
    ],
    ["root", (_, c) => c.securityContext.runAsUser = 0],
    [
      "runAsGroup",
      (pod, c) => (pod.securityContext.runAsGroup = 0, c.securityContext.runAsGroup = 0),
    ],
    ["drop does not include ALL", (_, c) => c.securityContext.capabilities.drop = ["NET_RAW"]],
    ["adds capability NET_ADMIN", (_, c) => c.securityContext.capabilities.add = ["NET_ADMIN"]],
    [
      "seccompProfile",
      (
        pod,
        c,
      ) => (delete pod.securityContext.seccompProfile,
        c.securityContext.seccompProfile = { type: "Unconfined" }),
    ],
    ["hostPort", (_, c) => c.ports[0].hostPort = 40007],
    [
      "sysctl",
      (pod) => pod.securityContext.sysctls = [{ name: "net.core.somaxconn", value: "4096" }],
    ],
  ];
  const [deployment] = committed().filter((o) => o.kind === "Deployment");
  assert.deepEqual(restrictedViolations(deployment), []);
  for (const [what, breakIt] of breaks) {
    const copy: Json = structuredClone(deployment);
    breakIt(copy.spec.template.spec, copy.spec.template.spec.containers[0]);
    const found = restrictedViolations(copy);
    assert.ok(found.some((v) => v.includes(what)), `${what} not found: ${JSON.stringify(found)}`);
  }
});

Deno.test("the schema checks find a wrong type, a bad enum and an unknown field", async () => {
  const objects: Json[] = structuredClone(committed());
  const deployment = objects.find((o) => o.kind === "Deployment");
  const service = objects.find((o) => o.kind === "Service");
  deployment.spec.replicas = "two";
  service.spec.ports[0].protocol = "TCPX";
  assert.deepEqual(schemaErrors(objects).length, 2, schemaErrors(objects).join("\n"));
  const typo: Json[] = structuredClone(committed());
  typo.find((o) => o.kind === "Deployment").spec.template.spec.containers[0].securityContex = {};
  assert.deepEqual(schemaErrors(typo), [], "the compiled schemas let unknown fields through");
  const found = await typeErrors(typo, "typo");
  assert.equal(found.length, 1, found.join("\n"));
  assert.match(found[0], /^Deployment echod: .*securityContex/);
  assert.deepEqual(schemaErrors([{ apiVersion: "v9", kind: "Gadget", metadata: { name: "g" } }]), [
    "Gadget g: no schema here for v9 Gadget",
  ]);
});
