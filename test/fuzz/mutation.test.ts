/**
 * A seeded mutation fuzz of the image decoders and the multipart parser, against a real listening
 * server: real images (test/fixtures/images, plus TIFF and AVIF encodings of one of them) and real
 * multipart bodies, with bytes flipped, cut, duplicated, deleted or zeroed. Every answer must be a
 * status the OpenAPI document lists for its route (never 500), with an error code from the one
 * table; the server must stay alive and answer a clean request exactly as before; RSS must stay
 * within a bound. Every byte sent, multipart boundaries included, comes from the fixed seed, so the
 * statuses are the same on every run. A failure names its case number: rerun to reproduce it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Detector } from '../../src/detection/detector';
import { ERRORS } from '../../src/server/errors';
import { IMAGES, loadFixtureDetector, multipart, startTestServer, type TestServer } from '../helpers/server';

const SEED = 0x5eed_1;
/** Cases per body kind (raw image, multipart to /v1/detect, multipart to /v1/vision/detection). */
const CASES_PER_KIND = 600;
/** Requests in flight at once: within concurrency + queue size, so none is refused for load. */
const PARALLEL = 4;
/** RSS growth allowed from after the first round to the end (the heap and sharp's caches settle first). */
const RSS_BOUND_BYTES = 256 * 1024 * 1024;

/** mulberry32: a small, fast, seeded PRNG (same sequence on every run and platform). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutation = (bytes: Buffer, random: () => number) => Buffer;
const int = (random: () => number, n: number): number => Math.floor(random() * n);

const MUTATIONS: Record<string, Mutation> = {
  flip: (bytes, random) => {
    const out = Buffer.from(bytes);
    const flips = 1 + int(random, 8);
    // half the flips land in the first 512 bytes, where headers and part boundaries are
    for (let i = 0; i < flips; i++) {
      const at = random() < 0.5 ? int(random, Math.min(512, out.length)) : int(random, out.length);
      out[at] = (out[at] ?? 0) ^ (1 << int(random, 8));
    }
    return out;
  },
  truncate: (bytes, random) => bytes.subarray(0, int(random, bytes.length)),
  duplicate: (bytes, random) => {
    const start = int(random, bytes.length);
    const end = Math.min(bytes.length, start + 1 + int(random, 4096));
    const at = int(random, bytes.length);
    return Buffer.concat([bytes.subarray(0, at), bytes.subarray(start, end), bytes.subarray(at)]);
  },
  delete: (bytes, random) => {
    const start = int(random, bytes.length);
    return Buffer.concat([bytes.subarray(0, start), bytes.subarray(Math.min(bytes.length, start + 1 + int(random, 4096)))]);
  },
  zero: (bytes, random) => {
    const out = Buffer.from(bytes);
    const start = int(random, out.length);
    out.fill(0, start, Math.min(out.length, start + 1 + int(random, 2048)));
    return out;
  },
};
const MUTATION_NAMES = Object.keys(MUTATIONS);

interface Case {
  index: number;
  route: string;
  body: Buffer;
  contentType: string;
  what: string;
}

let detector: Detector;
let server: TestServer;
let corpus: Array<{ name: string; bytes: Buffer }>;
let documented: Map<string, Set<number>>;

beforeAll(async () => {
  detector = await loadFixtureDetector();
  server = await startTestServer(detector, { concurrency: 1, queueSize: 8 });
  const files = readdirSync(IMAGES)
    .filter((f) => /\.(jpe?g|png|gif|webp)$/i.test(f))
    .sort();
  // small versions keep each inference short; the files themselves are fuzzed too
  const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
  const small = sharp(landscape).resize(160);
  corpus = [
    ...files.map((f) => ({ name: f, bytes: readFileSync(path.join(IMAGES, f)) })),
    { name: 'landscape-160.tiff (lzw)', bytes: await small.clone().tiff({ compression: 'lzw' }).toBuffer() },
    { name: 'landscape-160.tiff (none)', bytes: await small.clone().tiff({ compression: 'none' }).toBuffer() },
    { name: 'landscape-160.avif', bytes: await small.clone().avif({ quality: 40 }).toBuffer() },
    { name: 'landscape-160.png', bytes: await small.clone().png().toBuffer() },
    { name: 'landscape-160.jpg (progressive)', bytes: await small.clone().jpeg({ progressive: true }).toBuffer() },
  ];
  const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
    paths: Record<string, { post?: { responses: Record<string, unknown> } }>;
  };
  documented = new Map();
  for (const route of ['/v1/detect', '/v1/vision/detection']) {
    documented.set(route, new Set(Object.keys(openapi.paths[route]?.post?.responses ?? {}).map(Number)));
  }
});
afterAll(async () => {
  await server?.shutdown();
  await detector?.close();
});

function makeCases(): Case[] {
  const random = prng(SEED);
  const cases: Case[] = [];
  const pick = <T>(items: readonly T[]): T => items[int(random, items.length)] as T;
  // boundaries from the same seed: a body's bytes, and so every status, are the same on every run
  const boundary = (): string =>
    `----cpwc-fuzz-${int(random, 2 ** 32)
      .toString(16)
      .padStart(8, '0')}${int(random, 2 ** 32)
      .toString(16)
      .padStart(8, '0')}`;
  const mutate = (bytes: Buffer): { bytes: Buffer; how: string } => {
    const rounds = 1 + int(random, 2);
    let out = bytes;
    const names: string[] = [];
    for (let r = 0; r < rounds; r++) {
      const name = pick(MUTATION_NAMES);
      names.push(name);
      out = MUTATIONS[name]?.(out, random) ?? out;
    }
    return { bytes: out, how: names.join('+') };
  };
  for (let i = 0; i < CASES_PER_KIND; i++) {
    const source = pick(corpus);
    const mutated = mutate(source.bytes);
    cases.push({
      index: cases.length,
      route: '/v1/detect',
      body: mutated.bytes,
      contentType: 'application/octet-stream',
      what: `raw ${source.name} ${mutated.how}`,
    });
  }
  for (const route of ['/v1/detect', '/v1/vision/detection']) {
    for (let i = 0; i < CASES_PER_KIND; i++) {
      const source = pick(corpus);
      const fields =
        route === '/v1/detect'
          ? [
              { name: 'score_threshold', value: '0.3' },
              { name: 'max_detections', value: '5' },
            ]
          : [{ name: 'min_confidence', value: '0.3' }];
      const form = multipart(
        [{ name: 'image', value: source.bytes, filename: source.name, contentType: 'application/octet-stream' }, ...fields],
        boundary(),
      );
      // mutate the whole body (boundaries, part headers, the image) or only the image inside it
      if (random() < 0.5) {
        const mutated = mutate(form.body);
        cases.push({
          index: cases.length,
          route,
          body: mutated.bytes,
          contentType: form.contentType,
          what: `multipart ${source.name} body ${mutated.how}`,
        });
      } else {
        const mutated = mutate(source.bytes);
        const inner = multipart([{ name: 'image', value: mutated.bytes, filename: source.name }, ...fields], boundary());
        cases.push({
          index: cases.length,
          route,
          body: inner.body,
          contentType: inner.contentType,
          what: `multipart ${source.name} image ${mutated.how}`,
        });
      }
    }
  }
  return cases;
}

async function send(c: Case): Promise<{ status: number; code: string | undefined }> {
  const response = await fetch(`${server.url}${c.route}`, { method: 'POST', body: c.body, headers: { 'Content-Type': c.contentType } });
  const text = await response.text();
  let code: string | undefined;
  if (response.status !== 200) {
    const body = JSON.parse(text) as { error?: { code?: string } | string };
    code = typeof body.error === 'object' ? body.error.code : undefined;
  }
  return { status: response.status, code };
}

it(`answers ${3 * CASES_PER_KIND} mutated images and multipart bodies with documented statuses, and stays healthy`, async () => {
  const clean = readFileSync(path.join(IMAGES, 'landscape.jpg'));
  const before = await (await fetch(`${server.url}/v1/detect`, { method: 'POST', body: clean })).json();
  const cases = makeCases();
  const problems: string[] = [];
  const statuses = new Map<number, number>();
  let rssAfterFirstRound = 0;
  let maxRss = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const c = cases[next++] as Case;
      if (c.index === PARALLEL * 50) rssAfterFirstRound = process.memoryUsage().rss;
      const { status, code } = await send(c);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
      if (!(documented.get(c.route)?.has(status) ?? false) || status >= 500)
        problems.push(`case ${c.index} (${c.what}): status ${status} ${code ?? ''}`);
      else if (c.route === '/v1/detect' && status !== 200 && (code === undefined || !(code in ERRORS)))
        problems.push(`case ${c.index} (${c.what}): status ${status} without a known code`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  expect(problems).toEqual([]);
  // the fuzz reached both sides: decodable images and refusals
  expect(statuses.get(200) ?? 0).toBeGreaterThan(100);
  expect(statuses.get(400) ?? 0).toBeGreaterThan(100);
  // alive, nothing leaked, and a clean request answers exactly as before
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  expect(server.detection.inference.admitted).toBe(0);
  expect(server.detection.inference.limiter.state).toEqual({ running: 0, queued: 0 });
  const after = (await (await fetch(`${server.url}/v1/detect`, { method: 'POST', body: clean })).json()) as Record<string, unknown>;
  expect(after.detections).toEqual((before as Record<string, unknown>).detections);
  expect(maxRss - rssAfterFirstRound).toBeLessThan(RSS_BOUND_BYTES);
  process.stdout.write(
    `mutation fuzz: ${cases.length} cases, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ` +
      `RSS after round 1 ${Math.round(rssAfterFirstRound / 1048576)} MiB, peak ${Math.round(maxRss / 1048576)} MiB\n`,
  );
});
