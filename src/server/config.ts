/**
 * Every server setting in one table: its CLI flag, its environment variables, its default,
 * how it is parsed and validated. A flag wins over an environment variable, which wins over
 * the default. `cpwc-detect serve --help` is generated from the same table.
 */
import { parseArgs } from 'node:util';
import { commaList, describeNumberRule, invalidParameterMessage, parseNumberText } from '../common/validate';
import { EXECUTION_PROVIDERS, isExecutionProvider, type ExecutionProvider } from '../detection/execution-provider';
import { MAX_DETECTIONS_LIMIT } from '../detection/limits';
import { DEFAULT_MODEL_DIR } from '../detection/model';
import { defaultIntraOpThreads } from '../detection/session';

/** The execution providers, as the error text and --help list them. */
const PROVIDER_LIST = EXECUTION_PROVIDERS.join(', ');

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerConfig {
  modelDir: string;
  /** A directory of model directories to serve instead of `modelDir` (docs/server.md, "Many models"). */
  modelRepository: string | undefined;
  /** The model of routes that name none; undefined = the only model, else the first by name. */
  defaultModel: string | undefined;
  /** Seconds between repository polls for added, removed and changed models; 0 = never. */
  repositoryPollS: number;
  host: string;
  port: number;
  /** ONNX Runtime intra-op threads per session. */
  intraOpThreads: number;
  /** ONNX Runtime execution provider of both graphs. */
  executionProvider: ExecutionProvider;
  /** Resize while decoding (approximate, faster on large photos). */
  fastResize: boolean;
  /** Inferences that run at the same time. */
  concurrency: number;
  /** Requests that may wait for an inference slot; past it, 503 + Retry-After. */
  queueSize: number;
  /** Whole-request deadline (upload, queue wait, inference); past it, 504. */
  requestTimeoutMs: number;
  /** Largest accepted request body (multipart overhead included). */
  maxBodyBytes: number;
  /** Largest accepted image, in decoded pixels (decompression-bomb guard). */
  maxPixels: number;
  /** Default score threshold of /v1/detect; undefined = the model's roi_heads.score_thresh. */
  scoreThreshold: number | undefined;
  /** Default cap on detections per image; undefined = the model's detections_per_img. */
  maxDetections: number | undefined;
  /** Accepted API keys; empty = no authentication. */
  apiKeys: string[];
  /** Whether /metrics requires an API key (only when keys are configured). */
  metricsAuth: boolean;
  logLevel: LogLevel;
  /** How long SIGTERM/SIGINT waits for in-flight requests before closing connections. */
  shutdownGraceMs: number;
  /** Browser origins allowed to call the API (CORS); `*` = any; empty = CORS off. */
  corsOrigins: string[];
  /** Cap on predictions of the DeepStack routes (20 for Frigate); undefined = no cap beyond the model's. */
  deepstackMaxPredictions: number | undefined;
  /**
   * After SIGTERM/SIGINT: readiness goes false at once, new connections are still accepted and
   * served for this long (so load balancers and endpoint removal catch up), then accepting stops.
   */
  drainDelayMs: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface Setting<K extends keyof ServerConfig> {
  key: K;
  flag: string;
  env: string[];
  /** What --help shows as the value. */
  placeholder: string;
  defaultValue: ServerConfig[K];
  description: string;
  parse(raw: string, source: string): ServerConfig[K];
}

type AnySetting = { [K in keyof ServerConfig]: Setting<K> }[keyof ServerConfig];

function integer(min: number, max: number): (raw: string, source: string) => number {
  return (raw, source) => {
    const parsed = parseNumberText(source, raw, { integer: true, min, max });
    if (!parsed.ok) throw new ConfigError(parsed.message);
    return parsed.value;
  };
}

function optionalNumber(min: number, max: number, integerOnly: boolean): (raw: string, source: string) => number | undefined {
  return (raw, source) => {
    const text = raw.trim();
    if (text === '' || text === 'model') return undefined;
    const rule = { integer: integerOnly, min, max };
    const parsed = parseNumberText(source, raw, rule);
    if (!parsed.ok) {
      throw new ConfigError(invalidParameterMessage(source, `${describeNumberRule(rule)} (or 'model' for the model's default)`, raw));
    }
    return parsed.value;
  };
}

function boolean(raw: string, source: string): boolean {
  const text = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off'].includes(text)) return false;
  throw new ConfigError(invalidParameterMessage(source, 'true or false', raw));
}

function executionProvider(raw: string, source: string): ExecutionProvider {
  const text = raw.trim().toLowerCase();
  if (!isExecutionProvider(text)) throw new ConfigError(invalidParameterMessage(source, `one of ${PROVIDER_LIST}`, raw));
  return text;
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function logLevel(raw: string, source: string): LogLevel {
  const text = raw.trim().toLowerCase();
  const level = LOG_LEVELS.find((l) => l === text);
  if (level === undefined) throw new ConfigError(invalidParameterMessage(source, `one of ${LOG_LEVELS.join(', ')}`, raw));
  return level;
}

function nonEmpty(raw: string, source: string): string {
  if (raw.trim() === '') throw new ConfigError(`${source} must not be empty`);
  return raw.trim();
}

function apiKeys(raw: string, source: string): string[] {
  const keys = commaList(raw);
  for (const key of keys) {
    if (key.length < 8) throw new ConfigError(`${source}: every API key must have at least 8 characters`);
  }
  return keys;
}

function corsOrigins(raw: string, source: string): string[] {
  const origins = commaList(raw);
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/i.test(origin)) {
      throw new ConfigError(`${source}: each origin must be '*' or scheme://host[:port] without a path, got '${origin}'`);
    }
  }
  return origins;
}

/** Defaults measured on the 2-core reference machine: see docs/server.md, "Choosing the defaults". */
export const SETTINGS: readonly AnySetting[] = [
  {
    key: 'modelDir',
    flag: 'model',
    env: ['CPWC_MODEL_DIR'],
    placeholder: 'DIR',
    defaultValue: DEFAULT_MODEL_DIR,
    description: "model directory to serve (docs/model-format.md); default: the package's models/shapes-cpwc-r50-fpn",
    parse: nonEmpty,
  },
  {
    key: 'modelRepository',
    flag: 'model-repository',
    env: ['CPWC_MODEL_REPOSITORY'],
    placeholder: 'DIR',
    defaultValue: undefined,
    description: 'serve every subdirectory of DIR holding a model.json, named after it (instead of --model)',
    parse: nonEmpty,
  },
  {
    key: 'defaultModel',
    flag: 'default-model',
    env: ['CPWC_DEFAULT_MODEL'],
    placeholder: 'NAME',
    defaultValue: undefined,
    description: 'model of /v1/detect, /v1/vision/detection and the demo page (default: the only model, else the first by name)',
    parse: nonEmpty,
  },
  {
    key: 'repositoryPollS',
    flag: 'repository-poll-s',
    env: ['CPWC_REPOSITORY_POLL_S'],
    placeholder: 'S',
    defaultValue: 10,
    description: 'seconds between polls of the models for added, removed and changed ones (0 = off)',
    parse: integer(0, 86_400),
  },
  {
    key: 'host',
    flag: 'host',
    env: ['CPWC_HOST'],
    placeholder: 'ADDR',
    defaultValue: '127.0.0.1',
    description: 'address to listen on (0.0.0.0 to expose beyond this machine)',
    parse: nonEmpty,
  },
  {
    key: 'port',
    flag: 'port',
    env: ['CPWC_PORT', 'PORT'],
    placeholder: 'N',
    defaultValue: 8080,
    description: 'TCP port (0 = any free port)',
    parse: integer(0, 65535),
  },
  {
    key: 'intraOpThreads',
    flag: 'threads',
    env: ['CPWC_THREADS'],
    placeholder: 'N',
    defaultValue: defaultIntraOpThreads(),
    description: 'ONNX Runtime intra-op threads per inference (default: CPUs, at most 4)',
    parse: integer(1, 256),
  },
  {
    key: 'executionProvider',
    flag: 'execution-provider',
    env: ['CPWC_EXECUTION_PROVIDER'],
    placeholder: 'P',
    defaultValue: 'cpu',
    description: `ONNX Runtime execution provider: ${PROVIDER_LIST} (cuda/webgpu need their binaries and a GPU: README, "GPU")`,
    parse: executionProvider,
  },
  {
    key: 'fastResize',
    flag: 'fast-resize',
    env: ['CPWC_FAST_RESIZE'],
    placeholder: 'BOOL',
    defaultValue: false,
    description:
      'resize while decoding (JPEG shrink-on-load): faster on large photos, not bit-exact with torchvision (docs/performance.md)',
    parse: boolean,
  },
  {
    key: 'concurrency',
    flag: 'concurrency',
    env: ['CPWC_CONCURRENCY'],
    placeholder: 'N',
    defaultValue: 1,
    description: 'inferences running at the same time',
    parse: integer(1, 64),
  },
  {
    key: 'queueSize',
    flag: 'queue-size',
    env: ['CPWC_QUEUE_SIZE'],
    placeholder: 'N',
    defaultValue: 8,
    description: 'requests waiting for an inference slot; past it 503 + Retry-After',
    parse: integer(0, 10_000),
  },
  {
    key: 'requestTimeoutMs',
    flag: 'request-timeout-ms',
    env: ['CPWC_REQUEST_TIMEOUT_MS'],
    placeholder: 'MS',
    defaultValue: 30_000,
    description: 'deadline per request (upload + queue + inference); past it 504',
    parse: integer(100, 3_600_000),
  },
  {
    key: 'maxBodyBytes',
    flag: 'max-body-bytes',
    env: ['CPWC_MAX_BODY_BYTES'],
    placeholder: 'BYTES',
    defaultValue: 20 * 1024 * 1024,
    description: 'largest request body; past it 413',
    parse: integer(1024, 1024 * 1024 * 1024),
  },
  {
    key: 'maxPixels',
    flag: 'max-pixels',
    env: ['CPWC_MAX_PIXELS'],
    placeholder: 'N',
    defaultValue: 40_000_000,
    description: 'largest image in pixels (width x height); past it 413',
    parse: integer(1, 1_000_000_000),
  },
  {
    key: 'scoreThreshold',
    flag: 'score-threshold',
    env: ['CPWC_SCORE_THRESHOLD'],
    placeholder: 'X',
    defaultValue: undefined,
    description: "default score threshold of /v1/detect in [0, 1] ('model' = the model's own)",
    parse: optionalNumber(0, 1, false),
  },
  {
    key: 'maxDetections',
    flag: 'max-detections',
    env: ['CPWC_MAX_DETECTIONS'],
    placeholder: 'N',
    defaultValue: undefined,
    description: "default cap on detections per image ('model' = the model's own)",
    parse: optionalNumber(1, MAX_DETECTIONS_LIMIT, true),
  },
  {
    key: 'apiKeys',
    flag: 'api-keys',
    env: ['CPWC_API_KEYS'],
    placeholder: 'K1,K2',
    defaultValue: [],
    description: 'comma-separated API keys (Authorization: Bearer KEY); none = open. Prefer the env var: flags show in ps',
    parse: apiKeys,
  },
  {
    key: 'metricsAuth',
    flag: 'metrics-auth',
    env: ['CPWC_METRICS_AUTH'],
    placeholder: 'BOOL',
    defaultValue: true,
    description: 'whether /metrics needs an API key when keys are configured',
    parse: boolean,
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    env: ['CPWC_LOG_LEVEL'],
    placeholder: 'LEVEL',
    defaultValue: 'info',
    description: `log level: ${LOG_LEVELS.join(', ')}`,
    parse: logLevel,
  },
  {
    key: 'shutdownGraceMs',
    flag: 'shutdown-grace-ms',
    env: ['CPWC_SHUTDOWN_GRACE_MS'],
    placeholder: 'MS',
    defaultValue: 10_000,
    description: 'on SIGTERM/SIGINT, how long in-flight requests may take to finish',
    parse: integer(0, 600_000),
  },
  {
    key: 'corsOrigins',
    flag: 'cors-origins',
    env: ['CPWC_CORS_ORIGINS'],
    placeholder: 'O1,O2',
    defaultValue: [],
    description: "browser origins allowed to call the API (CORS), e.g. https://app.example:8443, or '*'; none = off",
    parse: corsOrigins,
  },
  {
    key: 'deepstackMaxPredictions',
    flag: 'deepstack-max-predictions',
    env: ['CPWC_DEEPSTACK_MAX_PREDICTIONS'],
    placeholder: 'N',
    defaultValue: undefined,
    description: "cap on predictions of the DeepStack routes, best first (20 for Frigate); 'model' = the model's own cap only",
    parse: optionalNumber(1, MAX_DETECTIONS_LIMIT, true),
  },
  {
    key: 'drainDelayMs',
    flag: 'drain-delay-ms',
    env: ['CPWC_DRAIN_DELAY_MS'],
    placeholder: 'MS',
    defaultValue: 0,
    description: 'on SIGTERM/SIGINT, readiness goes false and new requests are still accepted for this long before accepting stops',
    parse: integer(0, 600_000),
  },
];

export function defaultConfig(): ServerConfig {
  const config: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const setting of SETTINGS) config[setting.key] = setting.defaultValue;
  return config as ServerConfig;
}

export interface ParsedArgs {
  config: ServerConfig;
  help: boolean;
}

/**
 * Resolves the configuration from CLI arguments and the environment.
 * Throws ConfigError naming the flag or variable for the first invalid or unknown value.
 *
 * @example
 * const { config } = loadConfig(['--port', '0'], { CPWC_THREADS: '2' });
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const setting of SETTINGS) options[setting.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true }));
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  const config: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const setting of SETTINGS) {
    const flagValue = values[setting.flag];
    const envName = setting.env.find((name) => env[name] !== undefined);
    if (typeof flagValue === 'string') {
      config[setting.key] = setting.parse(flagValue, `--${setting.flag}`);
    } else if (envName !== undefined) {
      config[setting.key] = setting.parse(env[envName] ?? '', envName);
    } else {
      config[setting.key] = setting.defaultValue;
    }
  }
  return { config: config as ServerConfig, help: values.help === true };
}

function formatDefault(value: unknown, optionalPath = false): string {
  if (value === undefined) return optionalPath ? 'none' : 'model';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : `${value.length} keys`;
  return String(value);
}

export function usage(): string {
  const rows = SETTINGS.map((s) => {
    const flag = `--${s.flag} ${s.placeholder}`;
    const shownDefault = formatDefault(s.defaultValue, s.placeholder === 'DIR' || s.placeholder === 'NAME');
    return `  ${flag.padEnd(26)} ${s.description}\n  ${''.padEnd(26)} env ${s.env.join(' or ')}; default ${shownDefault}`;
  });
  return [
    'Usage: cpwc-detect serve [options]',
    '',
    'Serves a model directory over HTTP (POST /v1/detect, DeepStack-compatible /v1/vision/detection,',
    'Hugging Face POST /models/{model}, KServe v2 /v2/..., demo page at /, /metrics, /openapi.json).',
    'Flags override environment variables.',
    '',
    'Options:',
    ...rows,
    `  ${'-h, --help'.padEnd(26)} show this help`,
    '',
  ].join('\n');
}

/** The configuration with secrets removed, for the startup log line. */
export function describeConfig(config: ServerConfig): Record<string, unknown> {
  return { ...config, apiKeys: `${config.apiKeys.length} configured` };
}
