/**
 * The OpenAPI 3.1 description of every route (GET /openapi.json). test/server checks that the
 * app's routes and this document list the same paths and methods.
 */
import type { ServerConfig } from './config';
import { ERRORS } from './errors';
import type { ServedModel } from './model';

type Json = Record<string, unknown>;

const errorResponse = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

const deepstackErrorResponse = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/DeepStackError' } } },
});

const imageBody = (multipartFields: Json, required: boolean): Json => ({
  required,
  description:
    'The image: JPEG, PNG, WebP, GIF (first frame), TIFF, AVIF, HEIF or BMP, detected from the bytes (the content type is not trusted). ' +
    "Either the raw body with any Content-Type, or multipart/form-data with the file in field 'image'.",
  content: {
    'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
    'image/*': { schema: { type: 'string', format: 'binary' } },
    'multipart/form-data': {
      schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' }, ...multipartFields } },
    },
  },
});

const commonErrors = (style: 'native' | 'deepstack'): Json => {
  const make = style === 'native' ? errorResponse : deepstackErrorResponse;
  return {
    '400': make('Bad input: empty, corrupt or truncated image, invalid parameter, malformed multipart body (codes IMAGE_EMPTY, IMAGE_DECODE_FAILED, IMAGE_MISSING, INVALID_PARAMETER, MULTIPART_INVALID)'),
    '401': make('Missing or wrong API key (UNAUTHORIZED), when keys are configured'),
    ...(style === 'deepstack' ? { '408': make('The API key is in the body and the body arrived under the minimum transfer rate (UPLOAD_TOO_SLOW)') } : {}),
    '413': make('Body over the byte limit (BODY_TOO_LARGE), multipart body over the field or part limit (MULTIPART_TOO_MANY_PARTS) or image over the pixel limit (IMAGE_TOO_LARGE)'),
    '415': make('The bytes are not an image in a supported format (IMAGE_UNSUPPORTED_FORMAT)'),
    '503': make('Every inference slot and queue place is taken (QUEUE_FULL, with Retry-After), or the server is shutting down (SHUTTING_DOWN)'),
    '504': make('The request did not finish within the deadline (DEADLINE_EXCEEDED)'),
    '500': make('Internal error (INTERNAL); never carries internals'),
  };
};

export function buildOpenApi(model: ServedModel, config: ServerConfig): Json {
  const labels = model.classes.filter((label, id) => id > 0 && label !== 'N/A');
  const security = config.apiKeys.length > 0 ? [{ bearer: [] }] : [];
  const metricsSecurity = config.apiKeys.length > 0 && config.metricsAuth ? [{ bearer: [] }] : [];
  const detectParams = [
    { name: 'score_threshold', in: 'query', schema: { type: 'number', minimum: 0, maximum: 1 }, description: `Keep detections with score >= this (default ${config.scoreThreshold ?? model.roi_heads.score_thresh})` },
    { name: 'max_detections', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10000 }, description: `At most this many detections, best first (default ${config.maxDetections ?? model.roi_heads.detections_per_img})` },
    { name: 'classes', in: 'query', schema: { type: 'string', minLength: 1 }, description: `Comma-separated class labels or ids to keep (labels: ${labels.slice(0, 20).join(', ')}${labels.length > 20 ? ', …' : ''})` },
    { name: 'render', in: 'query', schema: { type: 'string', enum: ['1', '0', 'true', 'false', 'png', 'jpeg', 'jpg'] }, description: 'Return the image with the boxes drawn instead of JSON (1, true, png: PNG; jpeg, jpg: JPEG; 0, false: JSON; case-insensitive; also chosen by Accept: image/png or image/jpeg)' },
  ];
  const deepstackOk = {
    description: 'Detections in DeepStack / CodeProject.AI form (integer pixel coordinates)',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/DeepStackResult' } } },
  };
  const deepstackOperation = (summary: string, extraParams: Json[], extraResponses: Json = {}): Json => ({
    summary,
    tags: ['deepstack'],
    security,
    parameters: extraParams,
    requestBody: imageBody(
      {
        min_confidence: { type: 'number', minimum: 0, maximum: 1, default: 0.45, description: 'Keep predictions with confidence >= this' },
        // any text: a multipart field has no type, and a server without keys ignores it
        api_key: { description: 'API key (alternative to Authorization: Bearer); any text' },
      },
      true,
    ),
    responses: { '200': deepstackOk, ...commonErrors('deepstack'), ...extraResponses },
  });

  return {
    openapi: '3.1.0',
    info: {
      title: 'cpwc-detect',
      version: '1',
      description: `Object detection with a Faster R-CNN / CPWC ResNet-50 model (serving '${model.name}', ${model.architecture}). Errors: ${Object.keys(ERRORS).join(', ')}.`,
    },
    paths: {
      '/v1/detect': {
        post: {
          summary: 'Detect objects in one image',
          tags: ['detection'],
          security,
          parameters: detectParams,
          requestBody: imageBody(
            {
              score_threshold: { type: 'number' },
              max_detections: { type: 'integer' },
              classes: { type: 'string' },
            },
            true,
          ),
          responses: {
            '200': {
              description: 'Detections in original-image pixels (continuous convention: the image spans [0, W] x [0, H]), or the rendered image',
              headers: { 'X-Request-Id': { schema: { type: 'string' } } },
              content: {
                'application/json': { schema: { $ref: '#/components/schemas/DetectResult' } },
                'image/png': { schema: { type: 'string', format: 'binary' } },
                'image/jpeg': { schema: { type: 'string', format: 'binary' } },
              },
            },
            ...commonErrors('native'),
          },
        },
      },
      '/v1/vision/detection': { post: deepstackOperation('DeepStack / CodeProject.AI compatible detection (Frigate, Blue Iris, Home Assistant)', []) },
      '/v1/vision/custom/{model}': {
        post: deepstackOperation(`DeepStack custom-model route; {model} must be '${model.name}'`, [
          { name: 'model', in: 'path', required: true, schema: { type: 'string' }, example: model.name },
        ], { '404': deepstackErrorResponse('No model of that name (MODEL_NOT_FOUND)') }),
      },
      '/v1/status/ping': {
        get: { summary: 'DeepStack-style liveness ping', tags: ['deepstack'], responses: { '200': { description: '{"success": true}' } } },
      },
      '/v1/models': {
        get: {
          summary: 'The served model: name, architecture, classes, input sizes, defaults, provenance',
          tags: ['detection'],
          security,
          responses: { '200': { description: 'Model list (one model)', content: { 'application/json': { schema: { type: 'object' } } } }, '401': errorResponse('Missing or wrong API key') },
        },
      },
      '/': { get: { summary: 'Demo page: pick or drop an image, see the boxes and the JSON', tags: ['ops'], responses: { '200': { description: 'HTML', content: { 'text/html': {} } } } } },
      '/healthz': { get: { summary: 'Liveness: 200 while the process serves HTTP', tags: ['ops'], responses: { '200': { description: 'alive' } } } },
      '/readyz': {
        get: {
          summary: 'Readiness: 200 once the model is loaded and a warm-up inference ran; 503 while starting or draining',
          tags: ['ops'],
          responses: { '200': { description: 'ready' }, '503': { description: 'starting or draining' } },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          tags: ['ops'],
          security: metricsSecurity,
          responses: { '200': { description: 'Prometheus text format', content: { 'text/plain': {} } }, '401': errorResponse('Missing or wrong API key') },
        },
      },
      '/openapi.json': { get: { summary: 'This document', tags: ['ops'], responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'One of the keys in CPWC_API_KEYS' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', enum: Object.keys(ERRORS) }, message: { type: 'string' } } } },
        },
        Box: {
          type: 'object',
          required: ['xmin', 'ymin', 'xmax', 'ymax'],
          properties: { xmin: { type: 'number' }, ymin: { type: 'number' }, xmax: { type: 'number' }, ymax: { type: 'number' } },
        },
        Detection: {
          type: 'object',
          required: ['label', 'class_id', 'score', 'box'],
          properties: { label: { type: 'string' }, class_id: { type: 'integer' }, score: { type: 'number' }, box: { $ref: '#/components/schemas/Box' } },
        },
        DetectResult: {
          type: 'object',
          required: ['model', 'width', 'height', 'detections', 'timings_ms'],
          properties: {
            model: { type: 'string' },
            width: { type: 'integer' },
            height: { type: 'integer' },
            detections: { type: 'array', items: { $ref: '#/components/schemas/Detection' } },
            timings_ms: {
              type: 'object',
              description: 'Per-stage durations: decode, transform, backbone_rpn, rpn_postprocess, box_head, postprocess, total; queue = wait for a slot',
              additionalProperties: { type: 'number' },
            },
          },
        },
        DeepStackPrediction: {
          type: 'object',
          required: ['label', 'confidence', 'x_min', 'y_min', 'x_max', 'y_max'],
          properties: {
            label: { type: 'string' },
            confidence: { type: 'number' },
            x_min: { type: 'integer' },
            y_min: { type: 'integer' },
            x_max: { type: 'integer' },
            y_max: { type: 'integer' },
          },
        },
        DeepStackResult: {
          type: 'object',
          required: ['success', 'predictions'],
          properties: {
            success: { type: 'boolean', const: true },
            predictions: { type: 'array', items: { $ref: '#/components/schemas/DeepStackPrediction' } },
            count: { type: 'integer' },
            message: { type: 'string' },
            duration: { type: 'number', description: 'Inference milliseconds' },
            inferenceMs: { type: 'integer' },
            processMs: { type: 'integer' },
            code: { type: 'integer' },
            requestId: { type: 'string' },
          },
        },
        DeepStackError: {
          type: 'object',
          required: ['success', 'error'],
          properties: { success: { type: 'boolean', const: false }, error: { type: 'string' }, code: { type: 'integer' } },
        },
      },
    },
  };
}
