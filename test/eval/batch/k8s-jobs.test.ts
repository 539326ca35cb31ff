/**
 * The batch-evaluation Jobs of deploy/k8s/batch-eval parse and agree with the CLI: every
 * argument is one `cpwc-detect eval` accepts (its own parser reads them, with the values
 * Kubernetes substitutes), each Indexed Job's N in --shard is its `completions` and its indices
 * give every shard once, each merge runs its shards' command without --shard, paths are on the
 * mounted volume, and the --server Jobs point at the Service of deploy/k8s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EVAL_OPTIONS } from '../../../src/cli/eval';
import { parseShard } from '../../../src/eval/batch/shard';
import { ROOT } from '../../helpers/eval';

/** The fields of the parsed manifests this test reads. */
interface EnvVar {
  name: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Container {
  args: string[];
  env?: EnvVar[];
  volumeMounts: { name: string; mountPath: string }[];
  securityContext: { readOnlyRootFilesystem?: boolean };
  resources: Record<'requests' | 'limits', Record<'cpu' | 'memory', string | undefined>>;
}
interface Doc {
  kind: string;
  metadata: { name: string };
  spec: {
    accessModes?: string[];
    completionMode?: string;
    completions?: number;
    parallelism?: number;
    ports?: { port: number }[];
    template: {
      spec: {
        restartPolicy: string;
        securityContext: { runAsUser: number };
        volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[];
        containers: Container[];
      };
    };
  };
}

const DIR = join(ROOT, 'deploy/k8s/batch-eval');

/** YAML documents of a file, parsed by PyYAML (the project's Python test venv, else Debian's python3-yaml). */
function loadYaml(file: string): Doc[] {
  const pythons = [join(ROOT, '.venv/bin/python'), '/usr/bin/python3'].filter((p) => existsSync(p));
  for (const python of pythons) {
    const result = spawnSync(
      python,
      ['-c', 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))', file],
      { encoding: 'utf8' },
    );
    if (result.status === 0) return JSON.parse(result.stdout) as Doc[];
    if (!result.stderr.includes("No module named 'yaml'")) throw new Error(`${file} does not parse: ${result.stderr}`);
  }
  throw new Error(
    `no Python with PyYAML to parse ${file}: tried ${pythons.join(', ')} ` +
      '(PyYAML is in scripts/constraints.txt; or apt-get install python3-yaml)',
  );
}

const docs = new Map<string, Doc>();
for (const name of readdirSync(DIR)
  .filter((n) => n.endsWith('.yaml'))
  .sort()) {
  for (const doc of loadYaml(join(DIR, name))) docs.set(`${doc.kind}/${doc.metadata.name}`, doc);
}
const service = loadYaml(join(ROOT, 'deploy/k8s/service.yaml'))[0]!;
const pvc = docs.get('PersistentVolumeClaim/cpwc-eval')!;

function container(job: Doc): Container {
  return job.spec.template.spec.containers[0]!;
}

/** The eval arguments of a Job's container, with $(VAR) replaced as the kubelet would. */
function evalArgs(job: Doc, env: Record<string, string>): string[] {
  const args = container(job).args;
  expect(args.slice(0, 3)).toEqual(['node', 'dist/cli/index.js', 'eval']);
  const declared = new Set((container(job).env ?? []).map((e) => e.name));
  return args.slice(3).map((arg) =>
    arg.replace(/\$\((\w+)\)/g, (_, name: string) => {
      expect(declared).toContain(name); // $(VAR) only expands for variables the container declares
      return env[name] ?? '';
    }),
  );
}

/** The arguments as `cpwc-detect eval` parses them (unknown flags and stray values throw). */
function parse(args: string[]): Record<string, string | boolean | undefined> {
  return parseArgs({ args, options: EVAL_OPTIONS, strict: true, allowPositionals: false }).values;
}

const jobs = [...docs.values()].filter((d) => d.kind === 'Job');
const pairs = [
  ['cpwc-eval-shards', 'cpwc-eval-merge'],
  ['cpwc-eval-server-shards', 'cpwc-eval-server-merge'],
];

describe('deploy/k8s/batch-eval', () => {
  it('holds the shared volume, two Indexed shard Jobs and their merges', () => {
    expect([...docs.keys()].sort()).toEqual([
      'Job/cpwc-eval-merge',
      'Job/cpwc-eval-server-merge',
      'Job/cpwc-eval-server-shards',
      'Job/cpwc-eval-shards',
      'PersistentVolumeClaim/cpwc-eval',
    ]);
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
  });

  it.each(jobs.map((j) => [j.metadata.name, j] as const))(
    '%s: every argument is a flag of cpwc-detect eval, on the mounted volume',
    (_name, job) => {
      const values = parse(evalArgs(job, { JOB_COMPLETION_INDEX: '0', CPWC_THREADS: '2' }));
      const mounts = new Map(container(job).volumeMounts.map((m) => [m.name, m.mountPath]));
      const claim = job.spec.template.spec.volumes.find((v) => v.persistentVolumeClaim !== undefined)!;
      expect(claim.persistentVolumeClaim!.claimName).toBe(pvc.metadata.name);
      const dataMount = mounts.get(claim.name)!;
      for (const flag of ['annotations', 'images', 'out']) expect(String(values[flag])).toMatch(new RegExp(`^${dataMount}/`));
      expect(mounts.get('tmp')).toBe('/tmp'); // read-only root filesystem: sharp and the report need a /tmp
      expect(container(job).securityContext.readOnlyRootFilesystem).toBe(true);
      expect(job.spec.template.spec.securityContext.runAsUser).toBe(1000);
      for (const kind of ['requests', 'limits'] as const)
        for (const r of ['cpu', 'memory'] as const) expect(container(job).resources[kind][r]).toBeDefined();
      if (values.threads !== undefined) expect(values.threads).toBe('2');
    },
  );

  it.each(pairs)('%s is Indexed: its indices are the shards 0..N-1 of --shard K/N, N = completions', (shardsName) => {
    const job = docs.get(`Job/${shardsName}`)!;
    expect(job.spec.completionMode).toBe('Indexed');
    const n = job.spec.completions!;
    expect(job.spec.parallelism).toBeLessThanOrEqual(n);
    expect(['OnFailure', 'Never']).toContain(job.spec.template.spec.restartPolicy);
    const env = container(job).env!.find((e) => e.name === 'JOB_COMPLETION_INDEX')!;
    expect(env.valueFrom?.fieldRef?.fieldPath).toBe("metadata.annotations['batch.kubernetes.io/job-completion-index']");
    const shards = Array.from({ length: n }, (_, k) =>
      parseShard(String(parse(evalArgs(job, { JOB_COMPLETION_INDEX: String(k), CPWC_THREADS: '2' })).shard)),
    );
    expect(shards).toEqual(Array.from({ length: n }, (_, k) => ({ index: k, count: n })));
  });

  it.each(pairs)("%s's merge is its command without --shard", (shardsName, mergeName) => {
    const shardArgs = parse(evalArgs(docs.get(`Job/${shardsName}`)!, { JOB_COMPLETION_INDEX: '0', CPWC_THREADS: '2' }));
    const merge = docs.get(`Job/${mergeName}`)!;
    expect(merge.spec.completionMode).toBeUndefined();
    expect(merge.spec.completions).toBe(1);
    const mergeArgs = parse(evalArgs(merge, { CPWC_THREADS: '2' }));
    const { shard, ...rest } = shardArgs;
    expect(shard).toBeDefined();
    expect(mergeArgs).toEqual(rest);
  });

  it('points the --server Jobs at the Service of deploy/k8s', () => {
    for (const name of ['cpwc-eval-server-shards', 'cpwc-eval-server-merge']) {
      const values = parse(evalArgs(docs.get(`Job/${name}`)!, { JOB_COMPLETION_INDEX: '0' }));
      const url = new URL(String(values.server));
      expect(url.hostname).toBe(service.metadata.name);
      expect(Number(url.port || 80)).toBe(service.spec.ports![0]!.port);
      expect(values.model).toBeUndefined();
      expect(values.threads).toBeUndefined();
    }
  });
});
