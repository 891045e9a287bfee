// What one NodeImageSet write costs the API server, by kind of write, on objects of the size the controller
// writes at scale (50 images, each with the status a real agent reports). bench/controller-scale.ts shows that
// a large change is bound by the API server's CPU per write; this bench says which part of a write it goes to.
//
//   node_modules/.bin/node bench/nis-write-cost.ts [--objects=60] [--images=50] [--rounds=5] [--profile=FILE]
//
// Each round writes every object once with each kind, kinds interleaved, 8 writes in flight, and reads the API
// server's CPU (process_cpu_seconds_total) around each kind. Kinds:
//   apply         the controller's server-side apply of the whole spec, one entry's round raised
//   apply-lean    the same as the controller sends it now: entries without the fields that equal the CRD's defaults
//   spec-merge    a JSON merge patch of spec.images with the same change
//   probe         a merge patch of one annotation (bench:controller's write-rate probe)
//   status        a merge patch of status.images, as the agents write (one entry's time changed)
//   keyed-*       apply-lean, status and probe on a copy of the CRD (another group) as it was before decision 0019:
//                 status.images, status.removals and the entries' sources map-type lists keyed per entry,
//                 pulledImageIds a set, so managedFields name every field of every entry
// --profile=FILE also writes a 20 s CPU profile of the API server during apply rounds (go tool pprof -top FILE).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KubeClient } from '../lib/kube-client.ts';
import { eachLimited } from '../lib/each-limited.ts';
import { startControlPlane } from '../local-cluster/control-plane.ts';
import { cachedBinary } from '../local-cluster/binaries.ts';
import { metricValue } from '../local-cluster/controller-process.ts';
import { createKeyedNodeImageSetCrd, installCrds } from '../local-cluster/crds.ts';
import { CONTROLLER_FIELD_MANAGER } from '../api/v1alpha1/labels.ts';
import { nodeImageSetSpecSchema } from '../api/v1alpha1/index.ts';
import { decode } from '../api/schema.ts';
import { leanSpec, metaTime } from '../controller/write/api-objects.ts';
import { completedImageStatus } from './simulated-agent.ts';
import { summarize } from './stats.ts';
import { positiveIntArg } from './cli-args.ts';

const OBJECTS = positiveIntArg('objects', 60);
const IMAGES = positiveIntArg('images', 50);
const ROUNDS = positiveIntArg('rounds', 5);
const PROFILE = process.argv.find((a) => a.startsWith('--profile='))?.slice('--profile='.length);
const KWARM = '/apis/kwarm.io/v1alpha1';
const IN_FLIGHT = 8;

type Kind = 'apply' | 'apply-lean' | 'spec-merge' | 'probe' | 'status' | 'keyed-apply' | 'keyed-status' | 'keyed-probe';
const KINDS: readonly Kind[] = ['apply', 'apply-lean', 'spec-merge', 'probe', 'status', 'keyed-apply', 'keyed-status', 'keyed-probe'];
/** The group of the CRD copy with the lists keyed per entry. */
const KEYED_GROUP = 'keyed.kwarm-bench.io';

interface Entry { image: string; round: number }

function imageName(i: number): string {
  return `registry.bench.example/team-${i % 20}/app-${i}:v1`;
}

/** A spec entry as the controller wrote it before: every defaulted field spelled out. */
function fullEntry(e: Entry): Record<string, unknown> {
  return {
    image: e.image, pullSecrets: [], timeout: '10m', retry: { maxAttempts: 3, backoffSeconds: 30 }, round: e.round,
    sources: [{ namespace: `bench-${e.image.length % 20}`, name: `deployment.${e.image.split('/')[2]?.split(':')[0] ?? 'x'}.app` }],
  };
}

/** The spec as the controller writes it: before (every default spelled out) or now (controller/write/api-objects.ts). */
function applyBody(name: string, entries: readonly Entry[], lean: boolean, group = 'kwarm.io'): unknown {
  const full = { maxConcurrentPulls: 2, images: entries.map(fullEntry), removals: [] };
  const decoded = decode(nodeImageSetSpecSchema, full);
  if (!decoded.ok) throw new Error(`bench spec does not decode: ${decoded.errors.join('; ')}`);
  return { apiVersion: `${group}/v1alpha1`, kind: 'NodeImageSet', metadata: { name }, spec: lean ? leanSpec(decoded.value) : full };
}

function statusImages(entries: readonly Entry[], now: string): unknown[] {
  return entries.map((e) => completedImageStatus(e.image, e.round, now));
}

async function main(): Promise<void> {
  const cp = await startControlPlane();
  const ac = new AbortController();
  const signal = ac.signal;
  const admin = new KubeClient(cp.kubeConfig(), { timeoutMs: 60_000 });
  const cpu = async (): Promise<number> => metricValue(String(await admin.get('/metrics', signal)), 'process_cpu_seconds_total') ?? 0;
  try {
    await installCrds(cp);
    const names = Array.from({ length: OBJECTS }, (_, i) => `node-${String(i).padStart(4, '0')}`);
    const entries = new Map(names.map((n, k) => [n, Array.from({ length: IMAGES }, (_, i): Entry => ({ image: imageName(k * 7 + i), round: 0 }))]));
    let tick = 0;
    // apply-lean writes its own objects, so that neither kind of apply takes fields from the other's.
    const leanNames = names.map((n) => `lean-${n}`);
    names.forEach((n) => entries.set(`lean-${n}`, (entries.get(n) ?? []).map((e) => ({ ...e }))));
    // keyed-* write objects of their own, in the CRD copy.
    const keyedNames = names.map((n) => `keyed-${n}`);
    names.forEach((n) => entries.set(`keyed-${n}`, (entries.get(n) ?? []).map((e) => ({ ...e }))));
    const keyedPath = await createKeyedNodeImageSetCrd(admin, KEYED_GROUP, signal);
    const pathOf = (name: string): string => (name.startsWith('keyed-') ? `${keyedPath}/${name}` : `${KWARM}/nodeimagesets/${name}`);
    await eachLimited([...names, ...leanNames, ...keyedNames], IN_FLIGHT, async (name) => {
      const es = entries.get(name) ?? [];
      const keyed = name.startsWith('keyed-');
      await admin.apply(pathOf(name), applyBody(name, es, !name.startsWith('node-'), keyed ? KEYED_GROUP : 'kwarm.io'), CONTROLLER_FIELD_MANAGER, signal);
      await admin.patch(`${pathOf(name)}/status`, 'merge', { status: { images: statusImages(es, metaTime(new Date())) } }, signal);
    });
    const kb = async (name: string): Promise<string> => (JSON.stringify(await admin.get(pathOf(name), signal)).length / 1024).toFixed(0);
    console.log(`${OBJECTS} NodeImageSets of ${IMAGES} images (${await kb(names[0] ?? '')} KB each as the API server returns it, ` +
      `${await kb(leanNames[0] ?? '')} KB written lean, ${await kb(keyedNames[0] ?? '')} KB with the lists keyed per entry), ${ROUNDS} rounds, ${IN_FLIGHT} writes in flight`);

    const write = async (kind: Kind, name: string): Promise<void> => {
      const es = entries.get(name) ?? [];
      const path = pathOf(name);
      tick++;
      if (kind === 'probe' || kind === 'keyed-probe') {
        await admin.patch(path, 'merge', { metadata: { annotations: { 'kwarm-bench/probe': String(tick) } } }, signal);
      } else if (kind === 'status' || kind === 'keyed-status') {
        await admin.patch(`${path}/status`, 'merge', { status: { images: statusImages(es, metaTime(new Date(Date.now() + tick * 1000))) } }, signal);
      } else {
        const first = es[0];
        if (first !== undefined) first.round++;
        if (kind === 'spec-merge') await admin.patch(path, 'merge', { spec: { images: es.map(fullEntry) } }, signal);
        else await admin.apply(path, applyBody(name, es, kind !== 'apply', kind === 'keyed-apply' ? KEYED_GROUP : 'kwarm.io'), CONTROLLER_FIELD_MANAGER, signal);
      }
    };

    const perWrite = new Map<Kind, { cpuMs: number[]; wallMs: number[] }>(KINDS.map((k) => [k, { cpuMs: [], wallMs: [] }]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const kind of KINDS) {
        const c0 = await cpu();
        const t0 = Date.now();
        const objects = kind === 'apply-lean' ? leanNames : kind.startsWith('keyed-') ? keyedNames : names;
        await eachLimited(objects, IN_FLIGHT, (name) => write(kind, name));
        const wall = Date.now() - t0;
        const c1 = await cpu();
        const figures = perWrite.get(kind);
        figures?.cpuMs.push((c1 - c0) * 1000 / OBJECTS);
        figures?.wallMs.push(wall / OBJECTS);
      }
    }
    console.log('API server per write, median (min-max) over rounds:');
    for (const kind of KINDS) {
      const f = perWrite.get(kind);
      if (f === undefined) continue;
      const c = summarize(f.cpuMs);
      const w = summarize(f.wallMs);
      console.log(`  ${kind.padEnd(11)} CPU ${c.median.toFixed(1)} ms (${c.min.toFixed(1)}-${c.max.toFixed(1)}), ` +
        `wall ${w.median.toFixed(1)} ms (${w.min.toFixed(1)}-${w.max.toFixed(1)}), i.e. ${(1000 / w.median).toFixed(1)} writes/s`);
    }
    // The same applies once the CRD has no CEL rules (x-kubernetes-validations), to see what the rules cost.
    const crdPath = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nodeimagesets.kwarm.io';
    const crd = await admin.get(crdPath, signal) as { spec: { versions: unknown[] } };
    const withoutCel = (v: unknown): unknown => Array.isArray(v) ? v.map(withoutCel)
      : typeof v === 'object' && v !== null
        ? Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'x-kubernetes-validations').map(([k, x]) => [k, withoutCel(x)]))
        : v;
    await admin.patch(crdPath, 'merge', { spec: { versions: withoutCel(crd.spec.versions) } }, signal);
    await new Promise((r) => setTimeout(r, 5000));
    const noCel: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const c0 = await cpu();
      await eachLimited(names, IN_FLIGHT, (name) => write('apply', name));
      noCel.push((await cpu() - c0) * 1000 / OBJECTS);
    }
    const n = summarize(noCel);
    console.log(`  apply, CRD without CEL rules: CPU ${n.median.toFixed(1)} ms (${n.min.toFixed(1)}-${n.max.toFixed(1)})`);
    // What each kind of apply leaves in managedFields (the controller's entries and the agents' status).
    for (const [what, name] of [['applied in full', names[0]], ['applied lean', leanNames[0]], ['with the lists keyed per entry, applied lean', keyedNames[0]]] as const) {
      const after = await admin.get(pathOf(name ?? ''), signal) as { metadata: { managedFields?: unknown[] } };
      console.log(`object ${what}, after the rounds: ${(JSON.stringify(after).length / 1024).toFixed(0)} KB, managedFields ${(JSON.stringify(after.metadata.managedFields ?? []).length / 1024).toFixed(0)} KB`);
    }

    if (PROFILE !== undefined) {
      const running = (async () => {
        const stop = Date.now() + 21_000;
        while (Date.now() < stop) await eachLimited(names, IN_FLIGHT, (name) => write('apply', name));
      })();
      // Binary output: straight from kubectl to the file, not through a string.
      await promisify(execFile)('sh', ['-c', `"$0" --kubeconfig "$1" get --raw '/debug/pprof/profile?seconds=20' > "$2"`,
        cachedBinary('kubectl'), cp.adminKubeconfig, PROFILE]);
      await running;
      console.log(`API server CPU profile during applies: ${PROFILE}`);
    }
  } finally {
    ac.abort();
    admin.close();
    await cp.stop();
  }
}

await main();
