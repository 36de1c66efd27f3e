/**
 * The "restricted" Pod Security Standard (and the baseline it includes),
 * checked on rendered objects without a cluster, plus what echod's image
 * asks for beyond it: uid and gid 65532 and a read-only root file system.
 * Each rule is written from the standard's table
 * (kubernetes.io/docs/concepts/security/pod-security-standards).
 *
 * @module
 */

import type { K8sObject } from "./chart.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** The kinds that run pods, and where their pod (metadata and spec) is. */
const POD_AT: Record<string, (o: Json) => Json> = {
  Pod: (o) => o,
  Deployment: (o) => o.spec?.template,
  StatefulSet: (o) => o.spec?.template,
  DaemonSet: (o) => o.spec?.template,
  ReplicaSet: (o) => o.spec?.template,
  Job: (o) => o.spec?.template,
  CronJob: (o) => o.spec?.jobTemplate?.spec?.template,
};

const RESTRICTED_VOLUMES = new Set([
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "image",
  "persistentVolumeClaim",
  "projected",
  "secret",
]);
const SAFE_SYSCTLS = new Set([
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_local_reserved_ports",
  "net.ipv4.tcp_keepalive_time",
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
]);
const SELINUX_TYPES = new Set([
  "",
  "container_t",
  "container_init_t",
  "container_kvm_t",
  "container_engine_t",
]);
/** The uid and gid echod's image runs as. */
export const ECHOD_ID = 65532;

/** Whether `kind` carries a pod template this check reads. */
export function hasPodSpec(kind: string): boolean {
  return kind in POD_AT;
}

/**
 * Every rule `object` breaks, one sentence each; none for an object that
 * runs no pod. `object` is a rendered Kubernetes object.
 */
export function restrictedViolations(object: K8sObject): string[] {
  const at = POD_AT[object.kind];
  if (at === undefined) return [];
  const where = `${object.kind} ${object.metadata?.name}`;
  const template: Json = at(object);
  const spec: Json = template?.spec;
  if (spec === undefined || spec === null) return [`${where}: no pod spec`];
  const found: string[] = [];
  const say = (what: string) => found.push(`${where}: ${what}`);
  const pod: Json = spec.securityContext ?? {};

  for (const host of ["hostNetwork", "hostPID", "hostIPC"]) {
    if (spec[host] === true) say(`${host} is true`);
  }
  for (const volume of spec.volumes ?? []) {
    const type = Object.keys(volume).find((key) => key !== "name");
    if (type === "hostPath") say(`volume ${volume.name} is a hostPath`);
    else if (type !== undefined && !RESTRICTED_VOLUMES.has(type)) {
      say(`volume ${volume.name} is of type ${type}, not one the restricted profile allows`);
    }
  }
  for (const sysctl of pod.sysctls ?? []) {
    if (!SAFE_SYSCTLS.has(sysctl.name)) say(`sysctl ${sysctl.name} is not a safe one`);
  }
  if (pod.windowsOptions?.hostProcess === true) say("the pod is a Windows host process");
  checkSeLinux(pod.seLinuxOptions, "the pod", say);
  checkAppArmor(pod.appArmorProfile, "the pod", say);
  if (pod.runAsUser === 0) say("the pod's runAsUser is 0 (root)");
  if (pod.runAsUser !== ECHOD_ID) say(`the pod's runAsUser is not ${ECHOD_ID}`);
  if (pod.runAsGroup !== ECHOD_ID) say(`the pod's runAsGroup is not ${ECHOD_ID}`);
  if (pod.runAsNonRoot !== true) say("the pod's runAsNonRoot is not true");
  if (pod.seccompProfile?.type !== "RuntimeDefault") {
    say("the pod's seccompProfile.type is not RuntimeDefault");
  }
  const annotations: Record<string, string> = template.metadata?.annotations ?? {};
  for (const [key, value] of Object.entries(annotations)) {
    if (
      key.startsWith("container.apparmor.security.beta.kubernetes.io/") &&
      value !== "runtime/default" && !value.startsWith("localhost/")
    ) say(`annotation ${key} is ${value}`);
  }

  const containers: [string, Json][] = [
    ...(spec.initContainers ?? []).map((c: Json) => ["init container", c]),
    ...(spec.containers ?? []).map((c: Json) => ["container", c]),
    ...(spec.ephemeralContainers ?? []).map((c: Json) => ["ephemeral container", c]),
  ];
  if ((spec.containers ?? []).length === 0) say("no containers");
  for (const [kind, container] of containers) {
    const name = `${kind} ${container.name}`;
    const sc: Json = container.securityContext ?? {};
    if (sc.privileged === true) say(`${name} is privileged`);
    if (sc.allowPrivilegeEscalation !== false) {
      say(`${name}: allowPrivilegeEscalation is not false`);
    }
    if (sc.readOnlyRootFilesystem !== true) say(`${name}: readOnlyRootFilesystem is not true`);
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) say(`${name}: runAsNonRoot is not true`);
    if (sc.runAsUser === 0) say(`${name}: runAsUser is 0 (root)`);
    if ((sc.runAsUser ?? pod.runAsUser) !== ECHOD_ID) say(`${name}: runAsUser is not ${ECHOD_ID}`);
    if ((sc.runAsGroup ?? pod.runAsGroup) !== ECHOD_ID) {
      say(`${name}: runAsGroup is not ${ECHOD_ID}`);
    }
    const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
      say(`${name}: seccompProfile.type is ${seccomp ?? "unset"}`);
    }
    const drop: string[] = sc.capabilities?.drop ?? [];
    if (!drop.includes("ALL")) say(`${name}: capabilities.drop does not include ALL`);
    for (const add of sc.capabilities?.add ?? []) {
      if (add !== "NET_BIND_SERVICE") say(`${name}: adds capability ${add}`);
    }
    if (sc.procMount !== undefined && sc.procMount !== "Default") {
      say(`${name}: procMount is ${sc.procMount}`);
    }
    if (sc.windowsOptions?.hostProcess === true) say(`${name} is a Windows host process`);
    checkSeLinux(sc.seLinuxOptions, name, say);
    checkAppArmor(sc.appArmorProfile, name, say);
    for (const port of container.ports ?? []) {
      if (port.hostPort !== undefined && port.hostPort !== 0) {
        say(`${name}: port ${port.name ?? port.containerPort} uses hostPort ${port.hostPort}`);
      }
    }
  }
  return found;
}

function checkSeLinux(options: Json, who: string, say: (what: string) => void): void {
  if (options === undefined || options === null) return;
  if (!SELINUX_TYPES.has(options.type ?? "")) say(`${who}: seLinuxOptions.type is ${options.type}`);
  if (options.user) say(`${who}: seLinuxOptions.user is set`);
  if (options.role) say(`${who}: seLinuxOptions.role is set`);
}

function checkAppArmor(profile: Json, who: string, say: (what: string) => void): void {
  if (profile === undefined || profile === null) return;
  if (profile.type !== "RuntimeDefault" && profile.type !== "Localhost") {
    say(`${who}: appArmorProfile.type is ${profile.type}`);
  }
}
