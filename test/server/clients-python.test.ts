/**
 * The real Python clients, unchanged, against a real listening server: huggingface_hub's
 * InferenceClient, tritonclient[http] and deepstack-python (Home Assistant's DeepStack
 * integration). Detections must equal /v1/detect's for the same image; errors must come back in
 * each protocol's own shape, as each client reports them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Detection } from '../../src/detection/types';
import { failed, runPythonClients, succeeded } from './clients/python-clients';
import { FIXTURE_MODEL, IMAGES, type TestServer, useFixtureServers, deepstackRounded, detectOverHttp } from '../helpers/server';

const MODEL = path.basename(FIXTURE_MODEL);
const LANDSCAPE = path.join(IMAGES, 'landscape.jpg');
/** 119 472 bytes: over the strict server's 100 000-byte body limit. */
const LARGE = path.join(IMAGES, 'alpha.png');
const KEY = 'python-client-key-01';

interface TritonTensor {
  dtype: string;
  shape: number[];
  values: unknown;
}
type TritonAnswer = Record<'BOXES' | 'SCORES' | 'CLASS_IDS' | 'LABELS', TritonTensor> & { response: Record<string, unknown> };

const nativeDetections = (server: TestServer, image: Buffer, query = ''): Promise<Detection[]> => detectOverHttp(server, image, KEY, query);

function tritonExpected(detections: readonly Detection[]): Record<string, unknown> {
  return {
    BOXES: {
      dtype: 'float32',
      shape: [detections.length, 4],
      values: detections.map((d) => [d.box.xmin, d.box.ymin, d.box.xmax, d.box.ymax].map(Math.fround)),
    },
    SCORES: { dtype: 'float32', shape: [detections.length], values: detections.map((d) => Math.fround(d.score)) },
    CLASS_IDS: { dtype: 'int64', shape: [detections.length], values: detections.map((d) => d.class_id) },
    LABELS: { dtype: 'object', shape: [detections.length], values: detections.map((d) => d.label) },
  };
}

describe('real Python clients against a listening server', () => {
  const fixture = useFixtureServers({ open: {}, strict: { apiKeys: [KEY], maxBodyBytes: 100_000 } });
  let tmp: string;
  let notAnImage: string;
  const image = readFileSync(LANDSCAPE);

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'cpwc-clients-'));
    notAnImage = path.join(tmp, 'not-an-image.jpg');
    writeFileSync(notAnImage, 'this is a text file, not a JPEG\n');
  });
  afterAll(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('huggingface_hub InferenceClient.object_detection: the same detections as /v1/detect, with and without threshold', async () => {
    const url = `${fixture.servers.open.url}/models/${MODEL}`;
    const [plain, thresholded] = await runPythonClients([
      { client: 'huggingface', url, image: LANDSCAPE },
      { client: 'huggingface', url, image: LANDSCAPE, threshold: 0.9 },
    ]);
    const all = await nativeDetections(fixture.servers.open, image);
    const high = await nativeDetections(fixture.servers.open, image, '?score_threshold=0.9');
    expect(all.length).toBeGreaterThan(high.length);
    expect(high.length).toBeGreaterThan(0);
    const shape = (ds: Detection[]) => ds.map((d) => ({ label: d.label, score: d.score, box: d.box }));
    expect(succeeded(plain)).toEqual(shape(all));
    expect(succeeded(thresholded)).toEqual(shape(high));
  });

  it("tritonclient.http: health, metadata, and infer in binary and JSON give /v1/detect's detections", async () => {
    const host = fixture.servers.open.url.replace('http://', '');
    const [metadata, binary, json, versioned] = await runPythonClients([
      { client: 'triton', action: 'metadata', host, model: MODEL },
      { client: 'triton', host, model: MODEL, image: LANDSCAPE },
      {
        client: 'triton',
        host,
        model: MODEL,
        image: LANDSCAPE,
        binary_input: false,
        outputs: [
          { name: 'SCORES', binary: false },
          { name: 'LABELS', binary: true },
          { name: 'BOXES', binary: false },
        ],
        parameters: { score_threshold: 0.5, max_detections: 3 },
      },
      { client: 'triton', host, model: MODEL, image: LANDSCAPE, version: '1', outputs: [{ name: 'CLASS_IDS', binary: false }] },
    ]);
    expect(succeeded(metadata)).toEqual({
      live: true,
      ready: true,
      model_ready: true,
      server: { name: 'cpwc-detect', version: '0.1.0', extensions: ['binary_tensor_data'] },
      model: {
        name: MODEL,
        versions: ['1'],
        platform: 'cpwc-detect',
        inputs: [{ name: 'IMAGE', datatype: 'BYTES', shape: [1] }],
        outputs: [
          { name: 'BOXES', datatype: 'FP32', shape: [-1, 4] },
          { name: 'SCORES', datatype: 'FP32', shape: [-1] },
          { name: 'CLASS_IDS', datatype: 'INT64', shape: [-1] },
          { name: 'LABELS', datatype: 'BYTES', shape: [-1] },
        ],
      },
      config: {
        name: MODEL,
        platform: 'cpwc-detect',
        backend: 'cpwc-detect',
        max_batch_size: 0,
        input: [{ name: 'IMAGE', data_type: 'TYPE_STRING', dims: [1] }],
        output: [
          { name: 'BOXES', data_type: 'TYPE_FP32', dims: [-1, 4] },
          { name: 'SCORES', data_type: 'TYPE_FP32', dims: [-1] },
          { name: 'CLASS_IDS', data_type: 'TYPE_INT64', dims: [-1] },
          { name: 'LABELS', data_type: 'TYPE_STRING', dims: [-1] },
        ],
      },
    });
    const all = await nativeDetections(fixture.servers.open, image);
    expect(all.length).toBeGreaterThan(3);
    const binaryAnswer = succeeded<TritonAnswer>(binary);
    expect({
      BOXES: binaryAnswer.BOXES,
      SCORES: binaryAnswer.SCORES,
      CLASS_IDS: binaryAnswer.CLASS_IDS,
      LABELS: binaryAnswer.LABELS,
    }).toEqual(tritonExpected(all));
    // no outputs named: tritonclient asks for every output in binary
    expect((binaryAnswer.response.outputs as Array<{ parameters?: unknown }>).every((o) => o.parameters !== undefined)).toBe(true);

    const top = await nativeDetections(fixture.servers.open, image, '?score_threshold=0.5&max_detections=3');
    const jsonAnswer = succeeded<TritonAnswer>(json);
    const expected = tritonExpected(top);
    expect(jsonAnswer.SCORES).toEqual(expected.SCORES);
    expect(jsonAnswer.LABELS).toEqual(expected.LABELS);
    expect(jsonAnswer.BOXES).toEqual(expected.BOXES);
    const outputs = jsonAnswer.response.outputs as Array<{ name: string; data?: unknown; parameters?: unknown }>;
    expect(outputs.map((o) => [o.name, o.data !== undefined, o.parameters !== undefined])).toEqual([
      ['SCORES', true, false],
      ['LABELS', false, true],
      ['BOXES', true, false],
    ]);
    expect(succeeded<TritonAnswer>(versioned).CLASS_IDS).toEqual(tritonExpected(all).CLASS_IDS);
  });

  it("deepstack-python DeepstackObject.detect, default and custom model: /v1/detect's detections, DeepStack-rounded", async () => {
    const port = Number(new URL(fixture.servers.open.url).port);
    const [detection, custom, unknown] = await runPythonClients([
      { client: 'deepstack', ip: '127.0.0.1', port, image: LANDSCAPE, min_confidence: 0.6 },
      { client: 'deepstack', ip: '127.0.0.1', port, image: LANDSCAPE, min_confidence: 0.6, custom_model: MODEL },
      { client: 'deepstack', ip: '127.0.0.1', port, image: LANDSCAPE, custom_model: 'no-such-model' },
    ]);
    const reference = deepstackRounded(await nativeDetections(fixture.servers.open, image, '?score_threshold=0.6'));
    expect(reference.length).toBeGreaterThan(0);
    expect(succeeded(detection)).toEqual(reference);
    expect(succeeded(custom)).toEqual(reference);
    expect(failed(unknown)).toEqual({
      type: 'DeepstackException',
      status: null,
      message: `Bad url supplied, url ${fixture.servers.open.url}/v1/vision/custom/no-such-model raised error 404`,
    });
  });

  it("every client reports bad image, unknown model, missing or wrong key and an over-limit body as its protocol's error", async () => {
    const url = (model: string) => `${fixture.servers.strict.url}/models/${model}`;
    const host = fixture.servers.strict.url.replace('http://', '');
    const port = Number(new URL(fixture.servers.strict.url).port);
    const outcomes = await runPythonClients([
      // huggingface_hub
      { client: 'huggingface', url: url(MODEL), image: LANDSCAPE, token: KEY },
      { client: 'huggingface', url: url(MODEL), image: notAnImage, token: KEY },
      { client: 'huggingface', url: url('no-such-model'), image: LANDSCAPE, token: KEY },
      { client: 'huggingface', url: url(MODEL), image: LANDSCAPE },
      { client: 'huggingface', url: url(MODEL), image: LANDSCAPE, token: 'wrong-key-000000' },
      { client: 'huggingface', url: url(MODEL), image: LARGE, token: KEY },
      // tritonclient
      { client: 'triton', host, model: MODEL, image: LANDSCAPE, token: KEY },
      { client: 'triton', host, model: MODEL, image: notAnImage, token: KEY },
      { client: 'triton', host, model: 'no-such-model', image: LANDSCAPE, token: KEY },
      { client: 'triton', host, model: MODEL, image: LANDSCAPE },
      { client: 'triton', host, model: MODEL, image: LANDSCAPE, token: 'wrong-key-000000' },
      { client: 'triton', host, model: MODEL, image: LARGE, token: KEY },
      { client: 'triton', host, model: MODEL, images: [path.join(IMAGES, 'tiny.png'), path.join(IMAGES, 'tiny.png')], token: KEY },
      { client: 'triton', host, model: MODEL, image: LANDSCAPE, version: '7', token: KEY },
      // deepstack-python (reports only the status)
      { client: 'deepstack', ip: '127.0.0.1', port, image: LANDSCAPE, api_key: KEY },
      { client: 'deepstack', ip: '127.0.0.1', port, image: notAnImage, api_key: KEY },
      { client: 'deepstack', ip: '127.0.0.1', port, image: LANDSCAPE },
      { client: 'deepstack', ip: '127.0.0.1', port, image: LANDSCAPE, api_key: 'wrong-key-000000' },
      { client: 'deepstack', ip: '127.0.0.1', port, image: LARGE, api_key: KEY },
    ]);
    // the library's message for these bytes, as /v1/detect reports it
    const native = await fetch(`${fixture.servers.strict.url}/v1/detect`, {
      method: 'POST',
      body: readFileSync(notAnImage),
      headers: { Authorization: `Bearer ${KEY}` },
    });
    expect(native.status).toBe(415);
    const unsupported = ((await native.json()) as { error: { code: string; message: string } }).error;
    expect(unsupported.code).toBe('IMAGE_UNSUPPORTED_FORMAT');
    const [hfOk, hfBad, hfUnknown, hfMissing, hfWrong, hfLarge] = outcomes.slice(0, 6);
    expect(Array.isArray(succeeded(hfOk))).toBe(true);
    const hfError = (outcome: (typeof outcomes)[number] | undefined, status: number, message: string) => {
      const error = failed(outcome);
      expect(error.type).toBe('HfHubHTTPError');
      expect(error.status).toBe(status);
      // huggingface_hub reads the server's {"error": "…"} message
      expect(error.server_message).toBe(message);
    };
    hfError(hfBad, 415, unsupported.message);
    hfError(hfUnknown, 404, `unknown model 'no-such-model'; this server serves '${MODEL}'`);
    hfError(hfMissing, 401, 'a valid API key is required (Authorization: Bearer KEY)');
    hfError(hfWrong, 401, 'a valid API key is required (Authorization: Bearer KEY)');
    hfError(hfLarge, 413, 'the request body is larger than this server accepts (100000 bytes)');

    const [trOk, trBad, trUnknown, trMissing, trWrong, trLarge, trBatch, trVersion] = outcomes.slice(6, 14);
    expect(succeeded<TritonAnswer>(trOk).SCORES.dtype).toBe('float32');
    const tritonError = (outcome: (typeof outcomes)[number] | undefined, status: number, message: string) => {
      expect(failed(outcome)).toEqual({ type: 'InferenceServerException', status, message });
    };
    tritonError(trBad, 415, unsupported.message);
    tritonError(trUnknown, 404, `unknown model 'no-such-model'; this server serves '${MODEL}'`);
    tritonError(trMissing, 401, 'a valid API key is required (Authorization: Bearer KEY)');
    tritonError(trWrong, 401, 'a valid API key is required (Authorization: Bearer KEY)');
    tritonError(trLarge, 413, 'the request body is larger than this server accepts (100000 bytes)');
    tritonError(trBatch, 400, 'one image per inference request: input IMAGE must have shape [1], got shape [2] with 2 elements');
    tritonError(trVersion, 404, `model '${MODEL}' has no version '7'; its only version is '1'`);

    const [dsOk, dsBad, dsMissing, dsWrong, dsLarge] = outcomes.slice(14);
    expect(Array.isArray(succeeded(dsOk))).toBe(true);
    const dsError = (outcome: (typeof outcomes)[number] | undefined, status: number) => {
      expect(failed(outcome)).toEqual({
        type: 'DeepstackException',
        status: null,
        message: `Error from Deepstack request, status code: ${status}`,
      });
    };
    dsError(dsBad, 415);
    dsError(dsMissing, 401);
    dsError(dsWrong, 401);
    dsError(dsLarge, 413);
  });
});
