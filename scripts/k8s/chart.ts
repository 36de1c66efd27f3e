/**
 * The echod Helm chart as the checks see it: `helm template` and `helm lint`
 * runs, the rendered YAML split into objects, and the plain manifests for
 * `kubectl apply` users (`deploy/kubernetes/echod.yaml`) made from it.
 *
 * ```sh
 * deno task k8s:render    # rewrites deploy/kubernetes/echod.yaml from the chart
 * ```
 *
 * @module
 */

// Dev tools are pinned here, not in deno.json: a user who only serves never downloads them.
// deno-lint-ignore no-import-prefix
import { parseAllDocuments } from "npm:yaml@2.9.1";
import { helmPath, ROOT, ToolUnavailable } from "./tools.ts";

/** The chart, relative to the checkout (helm runs there). */
export const CHART = "deploy/helm/echod";
/** The values file that turns every feature on. */
export const EVERYTHING_VALUES = `${CHART}/ci/everything-values.yaml`;
/** The manifests rendered from the chart's defaults. */
export const MANIFESTS = "deploy/kubernetes/echod.yaml";
/** The release name the manifests are rendered with. */
export const RELEASE = "echod";

/** A Kubernetes object as rendered. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** What one helm run printed. */
export interface HelmResult {
  success: boolean;
  stdout: string;
  stderr: string;
}

/** Runs helm with `args` from the checkout. */
export async function helm(args: string[]): Promise<HelmResult> {
  const out = await new Deno.Command(await helmPath(), { args, cwd: ROOT, stdin: "null" }).output();
  const text = new TextDecoder();
  return { success: out.success, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/**
 * `helm template` of the chart with these extra arguments (`-f FILE`,
 * `--set K=V`); throws with helm's message when it fails.
 */
export async function renderChart(extra: string[] = []): Promise<string> {
  const result = await helm(["template", RELEASE, CHART, ...extra]);
  if (!result.success) throw new Error(`helm template failed: ${result.stderr.trim()}`);
  return result.stdout;
}

/** The objects in a multi-document YAML text; throws on a YAML error. */
export function parseObjects(yaml: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(yaml)) {
    if (doc.errors.length > 0) throw new Error(`bad YAML: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value as K8sObject);
  }
  return objects;
}

/** The header the rendered manifests start with. */
export const MANIFESTS_HEADER =
  `# echod for \`kubectl apply -f\`: the Helm chart in ${CHART} rendered with its
# default values (release name "${RELEASE}"). Do not edit: change the chart and run
# \`deno task k8s:render\`; \`deno task k8s:check\` fails when this file and the chart differ.
`;

/** The manifests' text as the chart renders it now. */
export async function manifestsFromChart(): Promise<string> {
  return MANIFESTS_HEADER + await renderChart();
}

if (import.meta.main) {
  try {
    Deno.writeTextFileSync(`${ROOT}/${MANIFESTS}`, await manifestsFromChart());
    console.log(`wrote ${MANIFESTS}`);
  } catch (error) {
    if (!(error instanceof ToolUnavailable)) throw error;
    console.error(error.message);
    Deno.exit(1);
  }
}
