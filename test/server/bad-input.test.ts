/**
 * A corpus of bad uploads through the real server: each gets a typed 4xx, the server stays up,
 * good requests still get the same answer afterwards, and memory settles across rounds.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Detector } from '../../src/detection/detector';
import { pngClaiming } from '../detection/images';
import { IMAGES, loadFixtureDetector, metricValue, multipart, startTestServer, type ErrorBody, type TestServer } from '../helpers/server';

const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
const alphaPng = readFileSync(path.join(IMAGES, 'alpha.png'));
const rocketWebp = readFileSync(path.join(IMAGES, 'rocket.webp'));
const hubbleGif = readFileSync(path.join(IMAGES, 'hubble.gif'));

/** The JPEG with its SOF0 frame header patched to declare width x height. */
function jpegDeclaring(jpeg: Buffer, width: number, height: number): Buffer {
  const patched = Buffer.from(jpeg);
  for (let i = 2; i < patched.length - 9; i++) {
    if (patched[i] === 0xff && (patched[i + 1] === 0xc0 || patched[i + 1] === 0xc2)) {
      patched.writeUInt16BE(height, i + 5);
      patched.writeUInt16BE(width, i + 7);
      return patched;
    }
  }
  throw new Error('no SOF marker');
}

interface Case {
  name: string;
  body: Buffer;
  headers?: Record<string, string>;
  route?: string;
  status: number;
  code: string;
}

let detector: Detector;
let server: TestServer;
let corpus: Case[];

beforeAll(async () => {
  detector = await loadFixtureDetector();
  server = await startTestServer(detector, { concurrency: 1, queueSize: 8 });
  const tiff = await sharp(landscape).tiff().toBuffer();
  const avif = await sharp(landscape).avif({ effort: 0 }).toBuffer();
  // 10000 x 10000 = 100 megapixels of one colour: compresses to a few hundred kilobytes
  const hundredMegapixels = await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: { r: 10, g: 200, b: 30 } } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const half = (b: Buffer): Buffer => b.subarray(0, Math.floor(b.length / 2));
  const random = Buffer.from(Array.from({ length: 4096 }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 24) & 0xff));
  const { body: noImage, contentType: noImageType } = multipart([{ name: 'picture', value: landscape, filename: 'x.jpg' }]);
  const { body: unterminated, contentType: unterminatedType } = multipart([{ name: 'image', value: landscape, filename: 'x.jpg' }]);
  corpus = [
    { name: 'zero bytes', body: Buffer.alloc(0), status: 400, code: 'IMAGE_EMPTY' },
    { name: 'zero bytes as a multipart image', ...asMultipart(Buffer.alloc(0)), status: 400, code: 'IMAGE_EMPTY' },
    { name: 'random bytes', body: random, status: 415, code: 'IMAGE_UNSUPPORTED_FORMAT' },
    {
      name: 'text declared as image/jpeg',
      body: Buffer.from('hello, not a picture'),
      headers: { 'Content-Type': 'image/jpeg' },
      status: 415,
      code: 'IMAGE_UNSUPPORTED_FORMAT',
    },
    {
      name: 'JSON declared as application/json',
      body: Buffer.from('{"image": "x"}'),
      headers: { 'Content-Type': 'application/json' },
      status: 415,
      code: 'IMAGE_UNSUPPORTED_FORMAT',
    },
    {
      name: 'an SVG document',
      body: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
      status: 415,
      code: 'IMAGE_UNSUPPORTED_FORMAT',
    },
    { name: 'a PDF header', body: Buffer.from('%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF'), status: 415, code: 'IMAGE_UNSUPPORTED_FORMAT' },
    { name: 'truncated JPEG (first half)', body: half(landscape), status: 400, code: 'IMAGE_DECODE_FAILED' },
    { name: 'truncated PNG (first half)', body: half(alphaPng), status: 400, code: 'IMAGE_DECODE_FAILED' },
    { name: 'truncated AVIF (first half)', body: half(avif), status: 400, code: 'IMAGE_DECODE_FAILED' },
    { name: 'truncated WebP (first half)', body: half(rocketWebp), status: 400, code: 'IMAGE_DECODE_FAILED' },
    { name: 'truncated GIF (first half)', body: half(hubbleGif), status: 400, code: 'IMAGE_DECODE_FAILED' },
    { name: 'truncated TIFF (first half)', body: half(tiff), status: 400, code: 'IMAGE_DECODE_FAILED' },
    { name: 'JPEG header only (200 bytes)', body: landscape.subarray(0, 200), status: 400, code: 'IMAGE_DECODE_FAILED' },
    { name: 'a 100-megapixel PNG', body: hundredMegapixels, status: 413, code: 'IMAGE_TOO_LARGE' },
    { name: 'a tiny PNG declaring 100000 x 100000', body: pngClaiming(100_000, 100_000, 3 * 64 + 1), status: 413, code: 'IMAGE_TOO_LARGE' },
    { name: 'a JPEG declaring 65000 x 65000', body: jpegDeclaring(landscape, 65_000, 65_000), status: 413, code: 'IMAGE_TOO_LARGE' },
    {
      name: 'a tiny PNG declaring 3000 x 3000 with almost no pixel data',
      body: pngClaiming(3_000, 3_000, 3 * 64 + 1),
      status: 400,
      code: 'IMAGE_DECODE_FAILED',
    },
    {
      name: 'multipart without an image field',
      body: noImage,
      headers: { 'Content-Type': noImageType },
      status: 400,
      code: 'IMAGE_MISSING',
    },
    {
      name: 'multipart without a boundary',
      body: Buffer.from('--x\r\n\r\n'),
      headers: { 'Content-Type': 'multipart/form-data' },
      status: 400,
      code: 'MULTIPART_INVALID',
    },
    {
      name: 'multipart cut before its closing boundary',
      body: unterminated.subarray(0, unterminated.length - 60),
      headers: { 'Content-Type': unterminatedType },
      status: 400,
      code: 'MULTIPART_INVALID',
    },
    {
      name: 'random bytes to the DeepStack route',
      body: random,
      route: '/v1/vision/detection',
      status: 415,
      code: 'IMAGE_UNSUPPORTED_FORMAT',
    },
    // RFC 7578: every part carries Content-Disposition: form-data; name=… (busboy skips others silently)
    {
      name: 'multipart with an empty part (no headers)',
      body: Buffer.from('--b0\r\n--b0--\r\n'),
      headers: { 'Content-Type': 'multipart/form-data; boundary=b0' },
      status: 400,
      code: 'MULTIPART_INVALID',
    },
    {
      name: 'multipart whose image part has no Content-Disposition',
      body: Buffer.concat([Buffer.from('--b1\r\nContent-Type: image/jpeg\r\n\r\n'), landscape, Buffer.from('\r\n--b1--\r\n')]),
      headers: { 'Content-Type': 'multipart/form-data; boundary="b1"' },
      status: 400,
      code: 'MULTIPART_INVALID',
    },
    {
      name: 'multipart with a nameless part',
      body: Buffer.from('--b2\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b2--\r\n'),
      headers: { 'Content-Type': 'multipart/form-data; boundary=b2' },
      status: 400,
      code: 'MULTIPART_INVALID',
    },
    {
      name: 'an empty part to the DeepStack model list',
      body: Buffer.from('--b3\r\n--b3--\r\n'),
      headers: { 'Content-Type': 'multipart/form-data; boundary=b3' },
      route: '/v1/vision/custom/list',
      status: 400,
      code: 'MULTIPART_INVALID',
    },
  ];
}, 60_000);

afterAll(async () => {
  await server?.shutdown();
  await detector?.close();
});

function asMultipart(image: Buffer): { body: Buffer; headers: Record<string, string> } {
  const { body, contentType } = multipart([{ name: 'image', value: image, filename: 'x.jpg', contentType: 'image/jpeg' }]);
  return { body, headers: { 'Content-Type': contentType } };
}

async function send(c: Case): Promise<{ status: number; code: string | undefined }> {
  const response = await fetch(`${server.url}${c.route ?? '/v1/detect'}`, { method: 'POST', body: c.body, headers: c.headers });
  const body = (await response.json()) as ErrorBody & { success?: boolean; error: unknown };
  const code = typeof body.error === 'object' ? body.error.code : undefined;
  return { status: response.status, code };
}

describe('bad input through the server', () => {
  it('answers every case of the corpus with its typed 4xx', async () => {
    const answers = [];
    for (const c of corpus) {
      const result = await send(c);
      answers.push({ name: c.name, status: result.status, code: c.route === undefined ? result.code : c.code });
    }
    expect(answers).toEqual(corpus.map((c) => ({ name: c.name, status: c.status, code: c.code })));
  });

  it('still answers good requests exactly as before, and counts the failures by code', async () => {
    const expected = (await detector.detect(landscape)).detections;
    const response = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { detections: unknown }).detections).toEqual(expected);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(metricValue(text, `cpwc_images_total{outcome="IMAGE_TOO_LARGE",model="${detector.model.name}"}`)).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'cpwc_http_request_duration_seconds_count{method="POST",route="/v1/detect",status="500"}')).toBeUndefined();
  });

  it('serves damaged-but-decodable images and a 1x1 image normally', async () => {
    const onePixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 255, g: 0, b: 0 } } })
      .png()
      .toBuffer();
    const zeroedMiddle = Buffer.from(landscape);
    zeroedMiddle.fill(0, 2000, 2400);
    for (const image of [onePixel, zeroedMiddle]) {
      const response = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: image });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { detections: unknown }).detections).toEqual((await detector.detect(image)).detections);
    }
  });

  it('lets memory settle over repeated rounds of the corpus', async () => {
    const rss = async (): Promise<number> =>
      metricValue(await (await fetch(`${server.url}/metrics`)).text(), 'cpwc_process_resident_memory_bytes') ?? NaN;
    const samples: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (const c of corpus) await send(c);
      await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
      samples.push(await rss());
    }
    // after the first round has warmed every code path, further rounds do not grow RSS materially
    const growth = samples[samples.length - 1]! - samples[1]!;
    expect(growth).toBeLessThan(64 * 1024 * 1024);
  }, 120_000);
});
