/**
 * The Kubernetes manifests (deploy/k8s/) validated offline: every object against the
 * Kubernetes schemas (kubernetes-models, no cluster needed), and against the code: each
 * REENACT_ variable is one the server reads (config.ts), the edge is on the host network with
 * its RTC range and announced address, the reenactor hosts ask for a GPU and run the agent,
 * Redis keeps an append-only file on a volume, and every grace period covers the drain.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Namespace, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { envNames } from '../server/src/config.ts';

const dir = fileURLToPath(new URL('../deploy/k8s/', import.meta.url));

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

const models: Record<string, new (o: never) => { validate(): void }> = {
  'v1/Namespace': Namespace as never,
  'v1/Service': Service as never,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim as never,
  'apps/v1/Deployment': Deployment as never,
  'apps/v1/StatefulSet': StatefulSet as never,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as never,
};

function load(): { file: string; obj: Obj }[] {
  const out: { file: string; obj: Obj }[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      const obj = doc.toJS() as Obj | null;
      if (obj) out.push({ file, obj });
    }
  }
  return out;
}

type Container = { name: string; command?: string[]; args?: string[]; env?: { name: string; value?: string }[]; resources?: { limits?: Record<string, unknown> }; ports?: unknown[] };
type PodSpec = { hostNetwork?: boolean; terminationGracePeriodSeconds?: number; containers: Container[]; volumes?: unknown[] };

function pod(o: Obj): PodSpec {
  return ((o.spec?.['template'] as { spec: PodSpec } | undefined)?.spec ?? { containers: [] });
}

function env(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

test('every manifest is a valid Kubernetes object of a known kind, in the reenact namespace', () => {
  const all = load();
  assert.ok(all.length >= 8, `${all.length} objects`);
  for (const { file, obj } of all) {
    const Model = models[`${obj.apiVersion}/${obj.kind}`];
    assert.ok(Model, `${file}: ${obj.apiVersion} ${obj.kind} is not a kind these manifests are meant to hold`);
    assert.doesNotThrow(() => new Model(obj as never).validate(), `${file}: ${obj.kind} ${obj.metadata.name}`);
    if (obj.kind !== 'Namespace') assert.equal(obj.metadata.namespace, 'reenact', `${file}: ${obj.kind} ${obj.metadata.name}`);
  }
});

test('a broken manifest is caught: the validation is not a rubber stamp', () => {
  const edge = load().find((o) => o.obj.kind === 'Deployment' && o.obj.metadata.name === 'edge')!.obj;
  const broken = structuredClone(edge) as Obj & { spec: { replicas: unknown } };
  broken.spec.replicas = 'two';
  assert.throws(() => new Deployment(broken as never).validate());
});

test('the manifests hold to the code: variables, host network, GPU, persistence and drain', () => {
  const all = load().map((o) => o.obj);
  const known = new Set(Object.values(envNames));
  for (const o of all) {
    for (const c of pod(o).containers) for (const e of c.env ?? []) if (e.name.startsWith('REENACT_')) assert.ok(known.has(e.name), `${o.metadata.name}: ${e.name} is not read by the server`);
  }
  const edge = all.find((o) => o.kind === 'Deployment' && o.metadata.name === 'edge')!;
  const ec = pod(edge).containers[0]!;
  assert.equal(pod(edge).hostNetwork, true, 'the edge uses the node network for its RTC ports');
  for (const v of ['REENACT_REDIS_URL', 'REENACT_RTC_MIN_PORT', 'REENACT_RTC_MAX_PORT']) assert.ok(env(ec, v), `edge sets ${v}`);
  assert.ok(ec.env?.some((e) => e.name === 'REENACT_ANNOUNCED_IP'), 'the edge announces the node address');
  const agent = all.find((o) => o.kind === 'Deployment' && o.metadata.name === 'reenactor')!;
  const ac = pod(agent).containers[0]!;
  assert.ok(ac.resources?.limits?.['nvidia.com/gpu'], 'each reenactor host asks for a GPU');
  assert.ok(ac.command?.join(' ').includes('server/src/cluster/cli.ts'), 'the hosts run the agent');
  assert.equal(env(ac, 'REENACT_REDIS_URL'), env(ec, 'REENACT_REDIS_URL'), 'edges and hosts share one Redis');
  for (const d of [edge, agent]) {
    const c = pod(d).containers[0]!;
    const graceMs = Number(env(c, 'REENACT_DRAIN_GRACE_MS') ?? 30_000);
    assert.ok((pod(d).terminationGracePeriodSeconds ?? 30) * 1000 > graceMs, `${d.metadata.name}: Kubernetes waits longer than the drain`);
  }
  const redis = all.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'redis')!;
  assert.ok(pod(redis).containers[0]!.args?.join(' ').includes('--appendonly yes'), 'Redis keeps an append-only file');
  assert.ok(((redis.spec?.['volumeClaimTemplates'] as unknown[]) ?? []).length > 0, 'on a persistent volume');
});
