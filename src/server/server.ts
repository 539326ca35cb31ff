/**
 * A listening HTTP server around the app, with graceful shutdown: readiness goes false, new
 * connections are still served for the drain delay, then no new connections are accepted,
 * in-flight requests finish (up to the grace period), idle keep-alive connections and
 * connections that never sent a request are closed, then whatever remains is cut.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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

/**
 * Every open connection and whether it has sent a request yet. Node's `closeIdleConnections`
 * closes keep-alive connections between requests, but not a socket that never sent one (a
 * browser's or load balancer's preconnect): shutdown closes those itself.
 */
class ConnectionTracker {
  /** Sockets that have not sent a request yet, and when they connected. */
  private readonly unused = new Map<Socket, number>();

  constructor(server: http.Server) {
    server.on('connection', (socket: Socket) => {
      this.unused.set(socket, performance.now());
      socket.once('close', () => this.unused.delete(socket));
    });
    server.on('request', (req: http.IncomingMessage) => this.used(req.socket));
  }

  /** A request arrived on `socket` (for requests that bypass the 'request' event). */
  used(socket: Socket): void {
    this.unused.delete(socket);
  }

  /**
   * Closes the connections that have sent no request in the `minAgeMs` since they connected: a
   * client that connected just before the listener closed still gets to send its request (and
   * an answer: 503 SHUTTING_DOWN, or the drain delay's service) instead of a reset.
   */
  closeUnused(minAgeMs: number): void {
    const now = performance.now();
    for (const [socket, connectedAt] of this.unused) {
      if (now - connectedAt < minAgeMs) continue;
      this.unused.delete(socket);
      socket.destroy();
    }
  }
}

/** How long a connection may stay silent after the listener closed before shutdown closes it. */
const UNUSED_CONNECTION_GRACE_MS = 250;

/** Listens and returns at once; call `detection.warmUp()` to become ready. */
export async function startServer(options: AppOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const detection = createApp(options);
  const server = http.createServer(detection.app);
  const connections = new ConnectionTracker(server);
  // Expect: 100-continue: a declared body over the limit is refused without a 100 Continue, so the
  // client never sends it; any other request gets its 100 and goes to the app as usual
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    connections.used(req.socket);
    const declared = Number(req.headers['content-length']);
    if (!(Number.isFinite(declared) && declared > config.maxBodyBytes)) res.writeContinue();
    detection.app(req, res);
  });
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
      if (config.drainDelayMs > 0) {
        // readiness is false now; connections the kernel already queued (and any a load balancer
        // still sends) are accepted and served until the delay is over
        detection.lifecycle.servingWhileDraining = true;
        logger.info(
          { inferencesRunning: state.running, queued: state.queued, drainDelayMs: config.drainDelayMs },
          'draining: not ready, still accepting for the drain delay',
        );
        await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
        detection.lifecycle.servingWhileDraining = false;
      }
      const now = detection.inference.limiter.state;
      logger.info(
        { inferencesRunning: now.running, queued: now.queued, graceMs: config.shutdownGraceMs },
        'draining: refusing new requests, waiting for in-flight ones',
      );
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // connections that finish their last response become idle: close them as they do
      const sweep = (): void => {
        server.closeIdleConnections();
        connections.closeUnused(UNUSED_CONNECTION_GRACE_MS);
      };
      const idleSweep = setInterval(sweep, 50);
      sweep();
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
