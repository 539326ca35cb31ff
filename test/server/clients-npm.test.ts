/**
 * The real npm clients, unchanged, against a real listening server: @huggingface/inference's
 * objectDetection and node-red-contrib-deepstack's object-detection and custom-model nodes
 * (loaded into a minimal Node-RED runtime, clients/node-red-runtime.ts). Detections must equal
 * /v1/detect's for the same image; errors come back in each protocol's own shape.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InferenceClient, InferenceClientProviderApiError } from '@huggingface/inference';
import sharp from 'sharp';
import type { Detection } from '../../src/detection/types';
import { NodeRedRuntime, type RuntimeNode } from './clients/node-red-runtime';
import { FIXTURE_MODEL, IMAGES, type TestServer, useFixtureServers, deepstackRounded, detectOverHttp } from '../helpers/server';

// the node package's modules, as Node-RED loads them (CommonJS, `module.exports = function (RED)`)
/* eslint-disable @typescript-eslint/no-require-imports */
const serverNode = require('node-red-contrib-deepstack/deepstack-server.js') as (red: NodeRedRuntime['red']) => void;
const objectDetectionNode = require('node-red-contrib-deepstack/deepstack-object-detection.js') as (red: NodeRedRuntime['red']) => void;
const customModelNode = require('node-red-contrib-deepstack/deepstack-custom-model.js') as (red: NodeRedRuntime['red']) => void;
/* eslint-enable @typescript-eslint/no-require-imports */

const MODEL = path.basename(FIXTURE_MODEL);
const KEY = 'npm-client-key-0001';
const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
/** 119 472 bytes: over the strict server's 100 000-byte body limit. */
const large = readFileSync(path.join(IMAGES, 'alpha.png'));
const notAnImage = Buffer.from('this is a text file, not a JPEG\n');

const nativeDetections = (server: TestServer, image: Buffer, query = ''): Promise<Detection[]> => detectOverHttp(server, image, KEY, query);

async function nativeError(server: TestServer, image: Buffer): Promise<string> {
  const response = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: image, headers: { Authorization: `Bearer ${KEY}` } });
  return ((await response.json()) as { error: { message: string } }).error.message;
}

describe('real npm clients against a listening server', () => {
  const fixture = useFixtureServers({ open: {}, strict: { apiKeys: [KEY], maxBodyBytes: 100_000 } });

  describe('@huggingface/inference objectDetection', () => {
    const detect = (server: TestServer, model: string, image: Buffer, token: string | undefined) =>
      new InferenceClient(token, { endpointUrl: `${server.url}/models/${model}` }).objectDetection({ inputs: new Blob([image]) });

    it("gets /v1/detect's detections for the same image", async () => {
      const reference = await nativeDetections(fixture.servers.open, landscape);
      expect(reference.length).toBeGreaterThan(0);
      const found = await detect(fixture.servers.open, MODEL, landscape, 'hf_any_token_is_accepted_when_open');
      expect(found).toEqual(reference.map((d) => ({ label: d.label, score: d.score, box: d.box })));
      expect(await detect(fixture.servers.strict, MODEL, landscape, KEY)).toEqual(found);
    });

    it('reports bad image, unknown model, missing or wrong key and an over-limit body with the server\'s {"error"} message', async () => {
      const failure = async (promise: Promise<unknown>): Promise<{ status: number; body: unknown; message: string }> => {
        const err = await promise.then(
          () => {
            throw new Error('the client succeeded where it must fail');
          },
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(InferenceClientProviderApiError);
        const apiError = err as InferenceClientProviderApiError;
        return { status: apiError.httpResponse.status, body: apiError.httpResponse.body, message: apiError.message };
      };
      const unsupported = await nativeError(fixture.servers.strict, notAnImage);
      const keyMessage = 'a valid API key is required (Authorization: Bearer KEY)';
      const cases: Array<[Promise<unknown>, number, string]> = [
        [detect(fixture.servers.strict, MODEL, notAnImage, KEY), 415, unsupported],
        [
          detect(fixture.servers.strict, 'no-such-model', landscape, KEY),
          404,
          `unknown model 'no-such-model'; this server serves '${MODEL}'`,
        ],
        [detect(fixture.servers.strict, MODEL, landscape, undefined), 401, keyMessage],
        [detect(fixture.servers.strict, MODEL, landscape, 'wrong-key-000000'), 401, keyMessage],
        [detect(fixture.servers.strict, MODEL, large, KEY), 413, 'the request body is larger than this server accepts (100000 bytes)'],
      ];
      for (const [promise, status, message] of cases) {
        expect(await failure(promise)).toEqual({ status, body: { error: message }, message: `Failed to perform inference: ${message}` });
      }
    });
  });

  describe('node-red-contrib-deepstack', () => {
    const runtimes: NodeRedRuntime[] = [];
    const flow = (
      server: TestServer,
      apiKey?: string,
    ): { runtime: NodeRedRuntime; detection: RuntimeNode; custom: (model: string) => RuntimeNode } => {
      const runtime = new NodeRedRuntime();
      runtimes.push(runtime);
      runtime.load(serverNode);
      runtime.load(objectDetectionNode);
      runtime.load(customModelNode);
      const url = new URL(server.url);
      runtime.deploy(
        {
          id: 'server',
          type: 'deepstack-server',
          proto: 'http',
          host: url.hostname,
          port: Number(url.port),
          version: 'v1',
          rejectUnauthorized: true,
        },
        apiKey === undefined ? {} : { apiKey },
      );
      const detection = runtime.deploy({
        id: 'detect',
        type: 'deepstack-object-detection',
        server: 'server',
        confidence: 50,
        filters: ['class_5'],
        drawPredictions: true,
        outlineColor: '#ff0000',
        printLabel: false,
      });
      let n = 0;
      const custom = (model: string): RuntimeNode => {
        n += 1;
        return runtime.deploy({
          id: `custom-${n}`,
          type: 'deepstack-custom-model',
          server: 'server',
          confidence: 50,
          customModel: model,
          drawPredictions: false,
        });
      };
      return { runtime, detection, custom };
    };
    beforeEach(() => {
      // the nodes console.log every error they report; the test reads what node.error() got
      jest.spyOn(console, 'log').mockImplementation(() => undefined);
    });
    afterEach(() => jest.restoreAllMocks());
    // no test ends with the nodes' status timers still pending
    afterAll(() => Promise.all(runtimes.map((r) => r.idle())));

    it("object detection and custom model nodes get /v1/detect's detections at their confidence, filters and drawing work", async () => {
      const reference = deepstackRounded(await nativeDetections(fixture.servers.open, landscape, '?score_threshold=0.5'));
      const filtered = reference.filter((p) => p.label === 'class_5');
      expect(filtered.length).toBeGreaterThan(0);
      expect(filtered.length).toBeLessThan(reference.length);
      const { runtime, detection, custom } = flow(fixture.servers.open);
      const outputs = (await runtime.input(detection, { payload: landscape })) as Array<{
        payload: unknown;
        success: boolean;
        outlinedImage: Buffer;
      }>;
      expect(outputs).toHaveLength(2);
      expect(outputs[0]?.payload).toEqual(reference);
      expect(outputs[0]?.success).toBe(true);
      expect(outputs[1]?.payload).toEqual(filtered);
      // drawn by the package with the project's sharp (package.json overrides its sharp 0.29)
      const drawn = await sharp(outputs[0]?.outlinedImage).metadata();
      expect([drawn.width, drawn.height]).toEqual([600, 400]);
      const customOutput = (await runtime.input(custom(MODEL), { payload: landscape })) as { payload: unknown };
      expect(customOutput.payload).toEqual(reference);
    });

    it('reports bad image, unknown model, missing or wrong key and an over-limit body as DeepStack errors', async () => {
      const unsupported = await nativeError(fixture.servers.strict, notAnImage);
      const failure = async (promise: Promise<unknown>): Promise<{ status: number; body: unknown }> => {
        const err = (await promise.then(
          () => {
            throw new Error('the node succeeded where it must fail');
          },
          (e: unknown) => e,
        )) as { response?: { statusCode: number; body: string } };
        if (err.response === undefined) throw new Error(`the node failed without an HTTP response: ${String(err)}`);
        return { status: err.response.statusCode, body: JSON.parse(err.response.body) as unknown };
      };
      const keyed = flow(fixture.servers.strict, KEY);
      const unkeyed = flow(fixture.servers.strict);
      const wrong = flow(fixture.servers.strict, 'wrong-key-000000');
      expect(await failure(keyed.runtime.input(keyed.detection, { payload: notAnImage }))).toEqual({
        status: 415,
        body: { success: false, error: unsupported, code: 415 },
      });
      expect(await failure(keyed.runtime.input(keyed.custom('no-such-model'), { payload: landscape }))).toEqual({
        status: 404,
        body: { success: false, error: `unknown model 'no-such-model'; this server serves '${MODEL}'`, code: 404 },
      });
      const refused = { status: 401, body: { success: false, error: 'Incorrect api key', code: 401 } };
      expect(await failure(unkeyed.runtime.input(unkeyed.detection, { payload: landscape }))).toEqual(refused);
      expect(await failure(wrong.runtime.input(wrong.detection, { payload: landscape }))).toEqual(refused);
      expect(await failure(keyed.runtime.input(keyed.detection, { payload: large }))).toEqual({
        status: 413,
        body: { success: false, error: 'the request body is larger than this server accepts (100000 bytes)', code: 413 },
      });
      const ok = (await keyed.runtime.input(keyed.custom(MODEL), { payload: landscape })) as { payload: unknown[] };
      expect(ok.payload.length).toBeGreaterThan(0);
    });
  });
});
