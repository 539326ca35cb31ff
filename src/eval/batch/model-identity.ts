/**
 * What makes two batch runs' detections the same: the model's name, the sha256 of both graphs,
 * its input sizes and its detection defaults. A local model directory (model.json) and a
 * cpwc-detect server (GET /v1/models) give the same identity for the same model, so a run's
 * shards may be computed either way and merged.
 */
import type { ModelManifest } from '../../detection/model';
import { CocoEvalError } from '../errors';

export interface ModelIdentity {
  name: string;
  graphs_sha256: { backbone_rpn: string; box_head: string };
  input: { min_size: number; max_size: number; size_divisible: number };
  defaults: { score_threshold: number; max_detections: number };
}

/** The identity of a model directory's model.json. */
export function identityOfManifest(manifest: ModelManifest): ModelIdentity {
  return {
    name: manifest.name,
    graphs_sha256: {
      backbone_rpn: manifest.graphs.backbone_rpn.sha256.toLowerCase(),
      box_head: manifest.graphs.box_head.sha256.toLowerCase(),
    },
    input: {
      min_size: manifest.transform.min_size,
      max_size: manifest.transform.max_size,
      size_divisible: manifest.transform.size_divisible,
    },
    defaults: { score_threshold: manifest.roi_heads.score_thresh, max_detections: manifest.roi_heads.detections_per_img },
  };
}

function field(value: unknown, pathName: string, source: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CocoEvalError('FIELD_INVALID', `${source}: ${pathName} is missing or not an object (is this a cpwc-detect server?)`, {
      file: source,
      field: pathName,
    });
  }
  return value as Record<string, unknown>;
}

function number(value: unknown, pathName: string, source: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new CocoEvalError('FIELD_INVALID', `${source}: ${pathName} is not a number`, { file: source, field: pathName });
  return value;
}

function hex(value: unknown, pathName: string, source: string): string {
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value)) {
    throw new CocoEvalError(
      'FIELD_INVALID',
      `${source}: ${pathName} is not a sha256 (the server is older than --server needs: it must list its graph checksums)`,
      { file: source, field: pathName },
    );
  }
  return value.toLowerCase();
}

/** The identity of one entry of GET /v1/models (`source` names the URL in messages). */
export function identityOfDescription(description: unknown, source: string): ModelIdentity {
  const d = field(description, 'models[0]', source);
  if (typeof d.name !== 'string' || d.name === '')
    throw new CocoEvalError('FIELD_INVALID', `${source}: models[0].name is not a string`, { file: source, field: 'name' });
  const graphs = field(d.graphs, 'models[0].graphs', source);
  const input = field(d.input, 'models[0].input', source);
  const defaults = field(d.defaults, 'models[0].defaults', source);
  return {
    name: d.name,
    graphs_sha256: {
      backbone_rpn: hex(
        field(graphs.backbone_rpn, 'models[0].graphs.backbone_rpn', source).sha256,
        'models[0].graphs.backbone_rpn.sha256',
        source,
      ),
      box_head: hex(field(graphs.box_head, 'models[0].graphs.box_head', source).sha256, 'models[0].graphs.box_head.sha256', source),
    },
    input: {
      min_size: number(input.min_size, 'models[0].input.min_size', source),
      max_size: number(input.max_size, 'models[0].input.max_size', source),
      size_divisible: number(input.size_divisible, 'models[0].input.size_divisible', source),
    },
    defaults: {
      score_threshold: number(defaults.score_threshold, 'models[0].defaults.score_threshold', source),
      max_detections: number(defaults.max_detections, 'models[0].defaults.max_detections', source),
    },
  };
}

/** "tiny-fpn (graphs 0519198138…, 2e8707b842…)" for messages. */
export function describeIdentity(identity: ModelIdentity): string {
  const graphs = identity.graphs_sha256;
  return `${identity.name} (graphs ${graphs.backbone_rpn.slice(0, 10)}…, ${graphs.box_head.slice(0, 10)}…)`;
}
