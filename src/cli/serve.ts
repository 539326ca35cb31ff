/**
 * `cpwc-detect serve`: loads a model directory or a model repository, serves it over HTTP, and on SIGTERM/SIGINT
 * drains (readiness false, in-flight requests finish) and exits 0. A second signal exits at once.
 */
import path from 'node:path';
import { Detector } from '../detection/detector';
import { DetectError } from '../detection/errors';
import { ConfigError, describeConfig, loadConfig, type ParsedArgs, usage } from '../server/config';
import { createLogger } from '../server/logging';
import { ModelRepository } from '../server/model-repository';
import { createRenderer } from '../server/renderer';
import { startServer } from '../server/server';
import { reportUsageError } from './usage';

export async function run(argv: string[]): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = loadConfig(argv, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return reportUsageError('serve', err.message);
  }
  if (parsed.help) {
    process.stdout.write(usage());
    return 0;
  }
  const { config } = parsed;
  const logger = createLogger(config.logLevel);
  logger.info({ config: describeConfig(config) }, 'starting');

  // --model DIR is a repository of one; --model-repository DIR serves every model directory in DIR
  const source =
    config.modelRepository !== undefined ? { root: path.resolve(config.modelRepository) } : { single: path.resolve(config.modelDir) };

  const running = await startServer({
    config,
    logger,
    render: createRenderer(config.maxPixels),
    repository: ({ inference, metrics, logger: log }) =>
      new ModelRepository({
        ...source,
        defaultModel: config.defaultModel,
        load: (dir) =>
          Detector.load(dir, {
            intraOpThreads: config.intraOpThreads,
            maxPixels: config.maxPixels,
            executionProvider: config.executionProvider,
            fastResize: config.fastResize,
          }),
        inference,
        metrics,
        logger: log,
      }),
  });
  logger.info({ url: running.url, models: config.modelRepository ?? config.modelDir }, 'listening; warming up');

  let resolveStopped: (drained: boolean) => void = () => undefined;
  const stopped = new Promise<boolean>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    running.shutdown().then(resolveStopped, () => resolveStopped(false));
  };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let exitCode = 0;
  try {
    await running.detection.warmUp();
    running.detection.repository?.startPolling(config.repositoryPollS);
    if (running.detection.lifecycle.phase === 'ready') logger.info({ url: running.url }, 'ready');
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof DetectError ? err.code : undefined;
    logger.fatal({ err, code }, `cannot serve the models: ${message}`);
    const what =
      config.modelRepository !== undefined ? `the model repository '${config.modelRepository}'` : `the model in '${config.modelDir}'`;
    process.stderr.write(`cpwc-detect serve: cannot load ${what}: ${code === undefined ? '' : `${code}: `}${message}\n`);
    exitCode = 1;
    stop();
  }

  const drained = await stopped;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  logger.info({ drained }, 'stopped');
  logger.flush();
  // ONNX Runtime or a stray handle must not keep a stopped server alive
  setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();
  return exitCode !== 0 ? exitCode : drained ? 0 : 1;
}
