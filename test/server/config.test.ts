import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, defaultConfig, describeConfig, loadConfig, usage, SETTINGS } from '../../src/server/config';
import { MAX_DETECTIONS_LIMIT } from '../../src/detection/limits';

describe('server configuration', () => {
  it('uses the defaults when nothing is given', () => {
    const { config, help } = loadConfig([], {});
    expect(help).toBe(false);
    expect(config).toEqual(defaultConfig());
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      modelDir: path.join(__dirname, '..', '..', 'models', 'shapes-cpwc-r50-fpn'),
      apiKeys: [],
      metricsAuth: true,
    });
  });

  it('reads environment variables, and a flag wins over its variable', () => {
    const env = {
      CPWC_PORT: '9000',
      CPWC_THREADS: '3',
      CPWC_API_KEYS: ' key-one-123 , key-two-456 ,',
      CPWC_SCORE_THRESHOLD: '0.3',
      CPWC_METRICS_AUTH: 'false',
    };
    const { config } = loadConfig(['--port', '9100', '--queue-size=0'], env);
    expect(config.port).toBe(9100);
    expect(config.queueSize).toBe(0);
    expect(config.intraOpThreads).toBe(3);
    expect(config.apiKeys).toEqual(['key-one-123', 'key-two-456']);
    expect(config.scoreThreshold).toBe(0.3);
    expect(config.metricsAuth).toBe(false);
  });

  it('accepts PORT when CPWC_PORT is absent, CPWC_PORT first when both are set', () => {
    expect(loadConfig([], { PORT: '7000' }).config.port).toBe(7000);
    expect(loadConfig([], { PORT: '7000', CPWC_PORT: '7001' }).config.port).toBe(7001);
  });

  it("'model' means the model's own default for score threshold and max detections", () => {
    const { config } = loadConfig(['--score-threshold', 'model', '--max-detections', 'model'], { CPWC_SCORE_THRESHOLD: '0.9' });
    expect(config.scoreThreshold).toBeUndefined();
    expect(config.maxDetections).toBeUndefined();
  });

  it('reads CORS origins and the DeepStack prediction cap, both off by default', () => {
    expect(loadConfig([], {}).config).toMatchObject({ corsOrigins: [], deepstackMaxPredictions: undefined });
    const { config } = loadConfig(['--cors-origins', 'https://a.example:8443, http://b.example'], { CPWC_DEEPSTACK_MAX_PREDICTIONS: '20' });
    expect(config.corsOrigins).toEqual(['https://a.example:8443', 'http://b.example']);
    expect(config.deepstackMaxPredictions).toBe(20);
    expect(loadConfig(['--max-detections', String(MAX_DETECTIONS_LIMIT)], {}).config.maxDetections).toBe(MAX_DETECTIONS_LIMIT);
    expect(loadConfig([], { CPWC_CORS_ORIGINS: '*' }).config.corsOrigins).toEqual(['*']);
  });

  it.each([
    [['--port', '70000'], {}, "--port must be an integer in [0, 65535], got '70000'"],
    [[], { CPWC_CONCURRENCY: '0' }, "CPWC_CONCURRENCY must be an integer in [1, 64], got '0'"],
    [[], { CPWC_THREADS: '2.5' }, 'CPWC_THREADS must be an integer'],
    [[], { CPWC_SCORE_THRESHOLD: '1.5' }, 'CPWC_SCORE_THRESHOLD must be a number in [0, 1]'],
    [[], { CPWC_METRICS_AUTH: 'maybe' }, 'CPWC_METRICS_AUTH must be true or false'],
    [[], { CPWC_LOG_LEVEL: 'loud' }, 'CPWC_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent'],
    [[], { CPWC_API_KEYS: 'short' }, 'CPWC_API_KEYS: every API key must have at least 8 characters'],
    [['--model', ''], {}, '--model must not be empty'],
    [
      ['--cors-origins', 'https://app.example/path'],
      {},
      "--cors-origins: each origin must be '*' or scheme://host[:port] without a path, got 'https://app.example/path'",
    ],
    [[], { CPWC_DEEPSTACK_MAX_PREDICTIONS: '0' }, 'CPWC_DEEPSTACK_MAX_PREDICTIONS must be an integer in [1, 100000]'],
    [
      ['--max-detections', '100001'],
      {},
      "--max-detections must be an integer in [1, 100000] (or 'model' for the model's default), got '100001'",
    ],
    [['--no-such-flag'], {}, "Unknown option '--no-such-flag'"],
    [['stray'], {}, "Unexpected argument 'stray'"],
  ])('refuses %j %j with a message naming the setting', (argv, env, message) => {
    expect(() => loadConfig(argv, env)).toThrow(ConfigError);
    expect(() => loadConfig(argv, env)).toThrow(message);
  });

  it('--help lists every flag, its variables and its default', () => {
    expect(loadConfig(['--help'], {}).help).toBe(true);
    const text = usage();
    for (const setting of SETTINGS) {
      expect(text).toContain(`--${setting.flag}`);
      for (const name of setting.env) expect(text).toContain(name);
    }
    expect(text).toContain('default 127.0.0.1');
  });

  it('never shows API keys in the logged configuration', () => {
    const { config } = loadConfig([], { CPWC_API_KEYS: 'super-secret-key' });
    expect(JSON.stringify(describeConfig(config))).not.toContain('super-secret-key');
  });

  it('docs/server.md documents every flag and variable', () => {
    const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'server.md'), 'utf8');
    for (const setting of SETTINGS) {
      expect(doc).toContain(`\`--${setting.flag}\``);
      for (const name of setting.env) expect(doc).toContain(`\`${name}\``);
    }
  });
});
