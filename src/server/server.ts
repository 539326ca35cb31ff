/**
 * A listening HTTP server around the app, with graceful shutdown: readiness goes false, no new
 * connections are accepted, in-flight requests finish (up to the grace period), idle keep-alive
 * connections are closed, then whatever remains is cut.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createApp, type AppOptions, type DetectionApp } from './app';

export interface RunningServer {
  server: http.Server;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  detection: DetectionApp;
  /**
   * Drains and closes. Resolves true when every request finished within the grace period,
   * false when connections had to be cut.
   */
  shutdown(): Promise<boolean>;
}

/** Listens and returns at once; call `detection.warmUp()` to become ready. */
export async function startServer(options: AppOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const detection = createApp(options);
  const server = http.createServer(detection.app);
  // backstops under the app's own deadline: a client that trickles headers or body is cut
  server.requestTimeout = config.requestTimeoutMs + 5_000;
  server.headersTimeout = Math.min(60_000, server.requestTimeout);
  server.keepAliveTimeout = 5_000;
  server.listen(config.port, config.host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  let shutdownPromise: Promise<boolean> | undefined;
  const shutdown = (): Promise<boolean> => {
    shutdownPromise ??= (async () => {
      detection.lifecycle.phase = 'draining';
      const state = detection.inference.limiter.state;
      logger.info({ inferencesRunning: state.running, queued: state.queued, graceMs: config.shutdownGraceMs }, 'draining: refusing new requests, waiting for in-flight ones');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // connections that finish their last response become idle: close them as they do
      const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      let graceTimer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => {
        graceTimer = setTimeout(() => resolve('timeout'), config.shutdownGraceMs);
      });
      const outcome = await Promise.race([closed.then(() => 'drained' as const), graceOver]);
      clearInterval(idleSweep);
      clearTimeout(graceTimer);
      if (outcome === 'timeout') {
        logger.warn('grace period over: closing the remaining connections');
        server.closeAllConnections();
        await closed;
      }
      // an inference whose client is gone still holds its slot: let it finish before the detector closes
      await detection.inference.limiter.whenIdle();
      // a repository's models close once their last request is done
      await detection.repository?.close();
      return outcome === 'drained';
    })();
    return shutdownPromise;
  };

  return { server, url, detection, shutdown };
}
