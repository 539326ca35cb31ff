/**
 * Rendered answers (render=1) draw and encode inside an inference slot, against a real listening
 * server with the real renderer: at most `concurrency` renders or inferences run at once.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Detector } from '../../src/detection/detector';
import type { RenderImage } from '../../src/server/app';
import { createRenderer } from '../../src/server/renderer';
import { startServer, type RunningServer } from '../../src/server/server';
import { IMAGES, loadFixtureDetector, testConfig } from '../helpers/server';

const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
let detector: Detector;
let server: RunningServer;
/** The limiter's running count seen at the start of each render. */
const runningAtRender: number[] = [];

beforeAll(async () => {
  detector = await loadFixtureDetector();
  const config = testConfig({ concurrency: 1, queueSize: 8 });
  const realRender = createRenderer(config.maxPixels);
  const observed: RenderImage = (image, detections, format) => {
    runningAtRender.push(server.detection.inference.limiter.state.running);
    return realRender(image, detections, format);
  };
  server = await startServer({ detector, config, logger: pino({ level: 'silent' }), render: observed, processMetrics: false });
  await server.detection.warmUp();
});
afterAll(async () => {
  await server?.shutdown();
  await detector?.close();
});

it('runs every render in the single inference slot, concurrent requests included', async () => {
  const answers = await Promise.all(
    Array.from({ length: 4 }, () => fetch(`${server.url}/v1/detect?render=png`, { method: 'POST', body: landscape })),
  );
  for (const answer of answers) {
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await answer.arrayBuffer());
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  }
  // each render held the one slot (running 1), so no render ran beside an inference or another render
  expect(runningAtRender).toEqual([1, 1, 1, 1]);
  expect(server.detection.inference.limiter.state).toEqual({ running: 0, queued: 0 });
});
