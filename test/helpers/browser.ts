/** Debian's chromium for the browser tests, driven by playwright-core (which never downloads a browser). */
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * A headless chromium with a fresh profile in `profileDir` (playwright passes it as --user-data-dir),
 * no network of its own beyond the pages it is sent to. Fails with the install command when chromium is missing.
 */
export async function launchChromium(profileDir: string, viewport?: { width: number; height: number }): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium with 'apt-get install -y chromium' (the browser test never downloads a browser)`,
    );
  }
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    ...(viewport === undefined ? {} : { viewport }),
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
