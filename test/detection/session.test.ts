import * as path from 'node:path';
import { loadModelDirectory } from '../../src/detection/model';
import { GraphSessions } from '../../src/detection/session';
import { fixtureModel } from '../helpers/fixture-models';

describe('GraphSessions (ONNX Runtime in a worker thread), tiny-fpn', () => {
  let sessions: GraphSessions;
  const rpnOutputs = ['0', '1', '2', '3', 'pool'].flatMap((l) => [`objectness_${l}`, `bbox_deltas_${l}`]);

  beforeAll(async () => {
    const model = await loadModelDirectory(fixtureModel('tiny-fpn'));
    sessions = await GraphSessions.create(model.backboneRpnPath, model.boxHeadPath, { intraOpThreads: 1 });
  });

  afterAll(async () => {
    await sessions?.close();
  });

  it("reports both graphs' inputs and outputs", () => {
    expect(sessions.graphs.backbone_rpn.inputNames).toEqual(['image']);
    expect(sessions.graphs.backbone_rpn.outputNames).toEqual(expect.arrayContaining(['feature_0', ...rpnOutputs]));
    expect(sessions.graphs.box_head.inputNames).toEqual(expect.arrayContaining(['feature_0', 'rois_0', 'rois_3']));
    expect(sessions.graphs.box_head.outputNames).toEqual(expect.arrayContaining(['class_logits', 'box_regression']));
  });

  it('returns only the fetched outputs of graph A and keeps the feature maps for graph B, which then drops them', async () => {
    const image = { data: new Float32Array(3 * 64 * 96), dims: [1, 3, 64, 96] };
    const a = await sessions.runBackboneRpn(1, image, rpnOutputs);
    expect(Object.keys(a.outputs).sort()).toEqual([...rpnOutputs].sort());
    expect(a.outputs.objectness_0?.dims).toEqual([1, 3, 16, 24]);
    const rois = Object.fromEntries(
      ['0', '1', '2', '3'].map((l) => [
        `rois_${l}`,
        { data: new Float32Array(l === '0' ? [0, 0, 10, 10] : []), dims: [l === '0' ? 1 : 0, 4] },
      ]),
    );
    const b = await sessions.runBoxHead(1, rois);
    const [rows, classes] = b.outputs.class_logits?.dims ?? [];
    expect(rows).toBe(1);
    expect(b.outputs.box_regression?.dims).toEqual([1, 4 * (classes ?? Number.NaN)]);
    await expect(sessions.runBoxHead(1, rois)).rejects.toThrow(/no feature maps for request 1/);
  });

  it("release() drops a request's feature maps", async () => {
    await sessions.runBackboneRpn(2, { data: new Float32Array(3 * 32 * 32), dims: [1, 3, 32, 32] }, rpnOutputs);
    await sessions.release(2);
    await expect(sessions.runBoxHead(2, {})).rejects.toThrow(/no feature maps for request 2/);
  });

  it('keeps the main thread free while a graph runs', async () => {
    // Run on the main thread, the graph would be done when the call returns, and its result would
    // come before any later turn of the event loop; from the worker, the loop turns first.
    const order: string[] = [];
    const pending = sessions
      .runBackboneRpn(3, { data: new Float32Array(3 * 1024 * 1024), dims: [1, 3, 1024, 1024] }, rpnOutputs)
      .then((run) => {
        order.push('graph done');
        return run;
      });
    setImmediate(() => order.push('event loop turned'));
    const run = await pending;
    await sessions.release(3);
    expect(run.runMs).toBeGreaterThan(50); // precondition: a graph long enough to be seen blocking
    expect(order).toEqual(['event loop turned', 'graph done']);
  });

  it('fails later calls once closed', async () => {
    const model = await loadModelDirectory(path.join(fixtureModel('tiny-fpn')));
    const other = await GraphSessions.create(model.backboneRpnPath, model.boxHeadPath, { intraOpThreads: 1 });
    await other.close();
    await expect(other.release(1)).rejects.toThrow(/closed/);
  });
});

describe('the session worker module', () => {
  it('runs from the compiled library (dist/), where it sits next to session.js', async () => {
    const compiled = path.resolve(__dirname, '../../dist/detection/session.js');
    const { GraphSessions: Compiled } = require(compiled) as { GraphSessions: typeof GraphSessions };
    const { sessionWorkerPath } = require(path.resolve(__dirname, '../../dist/detection/session-worker-path.js')) as {
      sessionWorkerPath: () => string;
    };
    expect(sessionWorkerPath()).toBe(path.resolve(__dirname, '../../dist/detection/session-worker.js'));
    const model = await loadModelDirectory(fixtureModel('tiny-fpn'));
    const sessions = await Compiled.create(model.backboneRpnPath, model.boxHeadPath, { intraOpThreads: 1 });
    try {
      expect(sessions.graphs.backbone_rpn.inputNames).toEqual(['image']);
    } finally {
      await sessions.close();
    }
  });
});
