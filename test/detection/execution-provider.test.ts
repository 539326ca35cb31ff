/**
 * --execution-provider / DetectorOptions.executionProvider. Only the CPU provider can run here; for the
 * others this pins the failure path: a provider that cannot start is EXECUTION_PROVIDER_UNAVAILABLE at
 * load, naming the provider and how to install it, never MODEL_INVALID and never a silent CPU fall-back.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as detectCli } from '../../src/cli/detect';
import { run as evalCli } from '../../src/cli/eval';
import { loadConfig, ConfigError } from '../../src/server/config';
import { Detector } from '../../src/detection/detector';
import { DetectError } from '../../src/detection/errors';
import { parseExecutionProvider } from '../../src/detection/execution-provider';
import { fixtureModel } from '../helpers/fixture-models';
import { IMAGES_DIR } from './images';

/** onnxruntime-node's CUDA provider library, present only after `npm ci --onnxruntime-node-install=cuda12`. */
function cudaBinariesInstalled(): boolean {
  const bin = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin');
  const found = (dir: string): boolean =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .some((e) => (e.isDirectory() ? found(path.join(dir, e.name)) : e.name.startsWith('libonnxruntime_providers_cuda')));
  return found(bin);
}

async function loadError(modelDir: string, options: Parameters<typeof Detector.load>[1]): Promise<DetectError> {
  const error: unknown = await Detector.load(modelDir, options).then(
    async (detector) => {
      await detector.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  if (!(error instanceof DetectError)) throw new Error(`expected a DetectError, got ${String(error)}`);
  return error;
}

async function cli(args: string[], run: (argv: string[]) => Promise<number> = detectCli): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await run(args), stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('execution providers', () => {
  const model = fixtureModel('tiny-fpn');
  const cudaCase = cudaBinariesInstalled() ? it.skip : it;

  it('runs on the CPU when asked explicitly, with the same detections as the default', async () => {
    const bytes = fs.readFileSync(path.join(IMAGES_DIR, 'landscape.jpg'));
    const cpu = await Detector.load(model, { intraOpThreads: 1, executionProvider: 'cpu' });
    const byDefault = await Detector.load(model, { intraOpThreads: 1 });
    try {
      const [a, b] = [await cpu.detect(bytes), await byDefault.detect(bytes)];
      expect(a.detections.length).toBeGreaterThan(0);
      expect(a.detections).toEqual(b.detections);
    } finally {
      await cpu.close();
      await byDefault.close();
    }
  });

  cudaCase('cuda without its binaries fails at load with EXECUTION_PROVIDER_UNAVAILABLE and the install command', async () => {
    const error = await loadError(model, { executionProvider: 'cuda' });
    expect(error.code).toBe('EXECUTION_PROVIDER_UNAVAILABLE');
    expect(error.message).toMatch(/^the cuda execution provider is not available \(ONNX Runtime: .+\); /);
    expect(error.message).toMatch(/npm ci --onnxruntime-node-install=cuda12.*--execution-provider cpu/);
  });

  cudaCase('a graph that no provider can load is still MODEL_INVALID, not a provider error', async () => {
    const broken = fs.mkdtempSync(path.join(os.tmpdir(), 'cpwc-ep-'));
    try {
      for (const file of fs.readdirSync(model)) fs.copyFileSync(path.join(model, file), path.join(broken, file));
      fs.writeFileSync(path.join(broken, 'backbone_rpn.onnx'), 'not an onnx graph');
      const error = await loadError(broken, { executionProvider: 'cuda', verifyChecksums: false });
      expect(error.code).toBe('MODEL_INVALID');
    } finally {
      fs.rmSync(broken, { recursive: true, force: true });
    }
  });

  it('webgpu either loads or fails with EXECUTION_PROVIDER_UNAVAILABLE (here: no GPU adapter)', async () => {
    const outcome = await Detector.load(model, { executionProvider: 'webgpu', intraOpThreads: 1 }).then(
      async (detector) => {
        await detector.close();
        return 'loaded';
      },
      (e: unknown) => (e instanceof DetectError ? e.code : String(e)),
    );
    expect(['loaded', 'EXECUTION_PROVIDER_UNAVAILABLE']).toContain(outcome);
  });

  it('an unknown provider is INVALID_OPTION naming the option and the accepted values', async () => {
    const error = await loadError(model, { executionProvider: 'tpu' as never });
    expect(error.code).toBe('INVALID_OPTION');
    expect(error.message).toBe('executionProvider must be one of cpu, cuda, webgpu, got "tpu"');
    expect(() => parseExecutionProvider('CUDA', '--execution-provider')).toThrow(
      '--execution-provider must be one of cpu, cuda, webgpu, got "CUDA"',
    );
  });

  it('detect --execution-provider: a bad value is usage (exit 2); an unavailable provider exits 1 with the code', async () => {
    const image = path.join(IMAGES_DIR, 'tiny.png');
    const bad = await cli(['--model', model, '--execution-provider', 'tpu', image]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--execution-provider must be one of cpu, cuda, webgpu, got 'tpu'");
    if (!cudaBinariesInstalled()) {
      const cuda = await cli(['--model', model, '--execution-provider', 'cuda', image]);
      expect(cuda.code).toBe(1);
      expect(cuda.stderr).toContain('cannot load the model: EXECUTION_PROVIDER_UNAVAILABLE: the cuda execution provider is not available');
    }
  });

  it('eval --execution-provider: a bad value is usage (exit 2), before any image is read', async () => {
    const dataset = path.join(__dirname, '..', '..', 'datasets', 'shapes-test');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cpwc-ep-eval-'));
    try {
      const args = [
        '--annotations',
        path.join(dataset, 'annotations.json'),
        '--images',
        path.join(dataset, 'images'),
        '--out',
        path.join(out, 'run'),
      ];
      const bad = await cli([...args, '--execution-provider', 'tpu'], evalCli);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("--execution-provider must be one of cpu, cuda, webgpu, got 'tpu'");
      expect(fs.existsSync(path.join(out, 'run'))).toBe(false);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('serve: --execution-provider and CPWC_EXECUTION_PROVIDER, cpu by default', () => {
    expect(loadConfig([], {}).config.executionProvider).toBe('cpu');
    expect(loadConfig([], { CPWC_EXECUTION_PROVIDER: 'webgpu' }).config.executionProvider).toBe('webgpu');
    expect(loadConfig(['--execution-provider', 'cuda'], { CPWC_EXECUTION_PROVIDER: 'webgpu' }).config.executionProvider).toBe('cuda');
    expect(() => loadConfig(['--execution-provider', 'tpu'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--execution-provider', 'tpu'], {})).toThrow(
      "--execution-provider must be one of cpu, cuda, webgpu, got 'tpu'",
    );
  });
});
