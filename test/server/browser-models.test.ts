/**
 * The demo page's model picker in a real browser (Debian's chromium via playwright-core, as
 * browser.test.ts): a server over a repository of two models shows a picker with the default
 * chosen; picking the other model sends its detections there.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { Detector } from '../../src/detection/detector';
import { createLogger } from '../../src/server/logging';
import type { RunningServer } from '../../src/server/server';
import { launchChromium } from '../helpers/browser';
import { fixtureModel } from '../helpers/fixture-models';
import { IMAGES, startRepositoryServer } from '../helpers/server';

const imagePath = path.join(IMAGES, 'landscape.jpg');

let scratch: string;
let server: RunningServer;
let browser: BrowserContext;
let page: Page;

beforeAll(async () => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'cpwc-picker-'));
  const root = path.join(scratch, 'repo');
  cpSync(fixtureModel('tiny-c4'), path.join(root, 'tiny-c4'), { recursive: true });
  cpSync(fixtureModel('tiny-fpn'), path.join(root, 'tiny-fpn'), { recursive: true });
  server = await startRepositoryServer(root, { defaultModel: 'tiny-fpn' }, createLogger('silent'));
  browser = await launchChromium(path.join(scratch, 'profile'));
  page = browser.pages()[0] ?? (await browser.newPage());
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.shutdown();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('demo page model picker', () => {
  it('lists the models with the default chosen, and detects with the one picked', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${server.url}/`);
    await page.locator('#model').filter({ hasText: 'tiny-fpn · cpwc_r50_fpn' }).waitFor();
    expect(await page.locator('#model-choice').isVisible()).toBe(true);
    expect(await page.locator('#model-picker option').allTextContents()).toEqual(['tiny-c4', 'tiny-fpn']);
    expect(await page.locator('#model-picker').inputValue()).toBe('tiny-fpn');

    await page.locator('#model-picker').selectOption('tiny-c4');
    await page.locator('#model').filter({ hasText: 'tiny-c4 · cpwc_r50_c4' }).waitFor();
    await page.setInputFiles('#file', imagePath);
    await page.waitForSelector('body[data-state="done"]', { timeout: 30_000 });
    const direct = await Detector.load(fixtureModel('tiny-c4'), { intraOpThreads: 1 });
    try {
      const all = (await direct.detect(readFileSync(imagePath), { scoreThreshold: 0 })).detections;
      expect(await page.locator('#status').textContent()).toContain(`${all.length} detections from tiny-c4`);
    } finally {
      await direct.close();
    }
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
