/**
 * The ONNX Runtime execution provider both graphs run on. CPU is the default and the only one this
 * project measures and tests end to end; CUDA and WebGPU are passed through to onnxruntime-node as they are.
 *
 * onnxruntime-node's default install carries the CPU and WebGPU providers (WebGPU still needs a GPU
 * adapter, on Linux through Vulkan); the CUDA provider's libraries come only with
 * `npm ci --onnxruntime-node-install=cuda12` (see README, "GPU"). When the provider cannot start,
 * loading a model fails with EXECUTION_PROVIDER_UNAVAILABLE, never with a silent fall-back to the CPU.
 */
import { DetectError } from './errors';

export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu'] as const;

export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export const DEFAULT_EXECUTION_PROVIDER: ExecutionProvider = 'cpu';

export function isExecutionProvider(value: unknown): value is ExecutionProvider {
  return typeof value === 'string' && (EXECUTION_PROVIDERS as readonly string[]).includes(value);
}

/**
 * The provider named by `value` (a CLI flag, an environment variable, a library option).
 * INVALID_OPTION, naming `source` and the accepted values, for anything else.
 *
 * @example
 * parseExecutionProvider('cuda', '--execution-provider'); // 'cuda'
 */
export function parseExecutionProvider(value: unknown, source = 'executionProvider'): ExecutionProvider {
  if (isExecutionProvider(value)) return value;
  throw new DetectError('INVALID_OPTION', `${source} must be one of ${EXECUTION_PROVIDERS.join(', ')}, got ${JSON.stringify(value)}`);
}

/** What a user must do to get a provider's binaries, for the EXECUTION_PROVIDER_UNAVAILABLE message. */
export function executionProviderHint(provider: ExecutionProvider): string {
  switch (provider) {
    case 'cuda':
      return [
        'install onnxruntime-node with its CUDA 12 binaries (npm ci --onnxruntime-node-install=cuda12, on a machine with internet access)',
        'and the CUDA 12 runtime and cuDNN 9 libraries, then check that an NVIDIA GPU is visible (nvidia-smi)',
      ].join(' ');
    case 'webgpu':
      return 'WebGPU needs a GPU adapter: on Linux a Vulkan driver (libvulkan.so.1) and a GPU it can use';
    case 'cpu':
      return 'the CPU provider is part of every onnxruntime-node install; reinstall onnxruntime-node (npm ci)';
  }
}

/** The error for a provider that ONNX Runtime could not start, with ONNX Runtime's own first line. */
export function executionProviderUnavailable(provider: ExecutionProvider, cause: unknown): DetectError {
  const detail = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  const hint = executionProviderHint(provider);
  const unavailable = `the ${provider} execution provider is not available (ONNX Runtime: ${detail})`;
  return new DetectError('EXECUTION_PROVIDER_UNAVAILABLE', `${unavailable}; ${hint}; or run on the CPU (--execution-provider cpu)`, {
    cause,
  });
}
