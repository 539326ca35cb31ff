/**
 * The demo page in a real browser: Debian's chromium driven by playwright-core (never a
 * downloaded browser). Uploads a real image, checks that the boxes and the JSON appear and that
 * the score slider filters them. Leaves a screenshot in $CPWC_SCREENSHOT_DIR (default: the OS
 * temp dir) for a human to look at.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { Detector } from '../../src/detection/detector';
import type { Detection } from '../../src/detection/types';
import { launchChromium } from '../helpers/browser';
import { IMAGES, loadFixtureDetector, startTestServer, type TestServer } from '../helpers/server';

/** The few DOM types the page callbacks use (they run in the browser; this file compiles without lib.dom). */
interface Context2D {
  fillStyle: string;
  drawImage(image: unknown, x: number, y: number): void;
  fillRect(x: number, y: number, w: number, h: number): void;
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}
interface HTMLCanvasElement {
  width: number;
  height: number;
  getContext(kind: '2d'): Context2D | null;
}
declare const document: { createElement(tag: 'canvas'): HTMLCanvasElement };
declare function createImageBitmap(blob: Blob): Promise<{ width: number; height: number }>;
const imagePath = path.join(IMAGES, 'landscape.jpg');

let detector: Detector;
let server: TestServer;
let browser: BrowserContext;
let page: Page;
let profileDir: string;

beforeAll(async () => {
  detector = await loadFixtureDetector();
  server = await startTestServer(detector);
  profileDir = mkdtempSync(path.join(os.tmpdir(), 'cpwc-chromium-'));
  browser = await launchChromium(profileDir, { width: 1280, height: 800 });
  page = browser.pages()[0] ?? (await browser.newPage());
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.shutdown();
  await detector?.close();
  if (profileDir !== undefined) rmSync(profileDir, { recursive: true, force: true });
});

async function shownDetections(): Promise<Detection[]> {
  const text = await page.locator('#json').textContent();
  return (JSON.parse(text ?? '') as { detections: Detection[] }).detections;
}

describe('demo page in chromium', () => {
  it('uploads an image and shows its boxes and JSON; the slider filters both', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const externalRequests: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(server.url) && !request.url().startsWith('blob:') && !request.url().startsWith('data:')) {
        externalRequests.push(request.url());
      }
    });

    await page.goto(`${server.url}/`);
    await page.locator('#model').filter({ hasText: detector.model.name }).waitFor();
    await page.setInputFiles('#file', imagePath);
    await page.waitForSelector('body[data-state="done"]', { timeout: 30_000 });

    // all detections the model keeps (score_threshold=0), filtered by the slider at its start value
    const all = (await detector.detect(readFileSync(imagePath), { scoreThreshold: 0 })).detections;
    expect(all.length).toBeGreaterThan(0);
    const start = Number(await page.locator('#threshold').inputValue());
    const expectedAtStart = all.filter((d) => d.score >= start);
    expect(await shownDetections()).toEqual(expectedAtStart);
    expect(await page.locator('#canvas').getAttribute('data-boxes')).toBe(String(expectedAtStart.length));
    const canvasSize = await page.locator('#canvas').evaluate((c: HTMLCanvasElement) => [c.width, c.height]);
    expect(canvasSize).toEqual([600, 400]);
    expect(await page.locator('#status').textContent()).toContain(`${all.length} detections from ${detector.model.name}`);

    // slide to 0: every detection, drawn
    await page.locator('#threshold').fill('0');
    expect(await shownDetections()).toEqual(all);
    expect(await page.locator('#canvas').getAttribute('data-boxes')).toBe(String(all.length));

    // the canvas really has the boxes: far more pixels of the best box's class colour than the photo has
    const hue = (all[0]!.class_id * 137.508) % 360;
    const colourCount = (plainImage?: string): Promise<number> =>
      page.locator('#canvas').evaluate(
        async (shown: HTMLCanvasElement, args: { h: number; plainImage?: string }) => {
          const probe = document.createElement('canvas').getContext('2d');
          if (probe === null) return -1;
          probe.fillStyle = `hsl(${args.h}, 85%, 38%)`;
          probe.fillRect(0, 0, 1, 1);
          const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
          let canvas = shown;
          if (args.plainImage !== undefined) {
            const binary = atob(args.plainImage);
            const bytes = new Uint8Array(binary.length);
            for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
            const bitmap = await createImageBitmap(new Blob([bytes]));
            canvas = document.createElement('canvas');
            canvas.width = bitmap.width;
            canvas.height = bitmap.height;
            canvas.getContext('2d')?.drawImage(bitmap, 0, 0);
          }
          const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? new Uint8ClampedArray();
          let n = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i] === r && data[i + 1] === g && data[i + 2] === b) n++;
          return n;
        },
        { h: hue, plainImage },
      );
    const withBoxes = await colourCount();
    const inPhoto = await colourCount(readFileSync(imagePath).toString('base64'));
    expect(withBoxes).toBeGreaterThan(inPhoto + 100);

    await page.locator('#threshold').fill('0.1');
    expect(await shownDetections()).toEqual(all.filter((d) => d.score >= 0.1));
    const screenshotDir = process.env.CPWC_SCREENSHOT_DIR ?? os.tmpdir();
    await page.screenshot({ path: path.join(screenshotDir, 'cpwc-demo-page.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
    expect(externalRequests).toEqual([]);
  }, 60_000);

  it('shows a server error message for a file that is not an image', async () => {
    await page.goto(`${server.url}/`);
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') });
    await page.waitForSelector('body[data-state="error"]', { timeout: 30_000 });
    expect(await page.locator('#status').textContent()).toContain('IMAGE_UNSUPPORTED_FORMAT');
    expect(await page.locator('#canvas').isHidden()).toBe(true);
  }, 60_000);
});
