/**
 * The OpenAPI 3.1 description of every route (GET /openapi.json). test/server checks that the
 * app's routes and this document list the same paths and methods.
 */
import type { ServerConfig } from './config';
import { ERRORS } from './errors';
import type { ServedModel } from './served-model';

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

const tritonError = (description: string): Json => ({
  description,
  content: {
    'application/json': {
      schema: { type: 'object', required: ['error'], properties: { error: { type: 'string' }, code: { type: 'string' } } },
    },
  },
});

/** Errors every repository route can answer, Triton's shape. */
const repositoryErrors = (): Json => ({
  '401': tritonError('Missing or wrong API key (UNAUTHORIZED), when keys are configured'),
  '503': tritonError('The server is shutting down (SHUTTING_DOWN)'),
  '500': tritonError('Internal error (INTERNAL); never carries internals'),
});

const commonErrors = (style: 'native' | 'deepstack'): Json => {
  const make = style === 'native' ? errorResponse : deepstackErrorResponse;
  return {
    '400': make(
      'Bad input: empty, corrupt or truncated image, invalid parameter, malformed multipart body (codes IMAGE_EMPTY, IMAGE_DECODE_FAILED, IMAGE_MISSING, INVALID_PARAMETER, MULTIPART_INVALID)',
    ),
    '401': make('Missing or wrong API key (UNAUTHORIZED), when keys are configured'),
    ...(style === 'deepstack'
      ? { '408': make('The API key is in the body and the body arrived under the minimum transfer rate (UPLOAD_TOO_SLOW)') }
      : {}),
    '413': make(
      'Body over the byte limit (BODY_TOO_LARGE), multipart body over the field or part limit (MULTIPART_TOO_MANY_PARTS) or image over the pixel limit (IMAGE_TOO_LARGE)',
    ),
    '415': make('The bytes are not an image in a supported format (IMAGE_UNSUPPORTED_FORMAT)'),
    '404': make('Unknown or unloaded model (MODEL_NOT_FOUND)'),
    '503': make(
      'Every inference slot and queue place is taken (QUEUE_FULL, with Retry-After), the model is loading or failed to load (MODEL_NOT_READY), or the server is shutting down (SHUTTING_DOWN)',
    ),
    '504': make('The request did not finish within the deadline (DEADLINE_EXCEEDED)'),
    '500': make('Internal error (INTERNAL); never carries internals'),
  };
};

/**
 * POST /v1/vision/custom/list reads its optional multipart body (for `api_key`) under the
 * detection routes' limits, but decodes no image and names no model.
 */
const listErrors = (): Json => ({
  '400': deepstackErrorResponse('Malformed multipart body (MULTIPART_INVALID) or a field given twice (INVALID_PARAMETER)'),
  '401': deepstackErrorResponse('Missing or wrong API key (UNAUTHORIZED), when keys are configured'),
  '408': deepstackErrorResponse('The API key is in the body and the body arrived under the minimum transfer rate (UPLOAD_TOO_SLOW)'),
  '413': deepstackErrorResponse(
    'Body over the byte limit (BODY_TOO_LARGE) or multipart body over the field or part limit (MULTIPART_TOO_MANY_PARTS)',
  ),
  '503': deepstackErrorResponse('The key is in the body and every place for such uploads is taken (QUEUE_FULL, with Retry-After)'),
  '504': deepstackErrorResponse('The request did not finish within the deadline (DEADLINE_EXCEEDED)'),
  '500': deepstackErrorResponse('Internal error (INTERNAL); never carries internals'),
});

const messageErrorResponse = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/MessageError' } } },
});

/** Hugging Face and KServe v2 answer errors as `{"error": "message"}`. */
const messageErrors = (): Json => {
  const native = commonErrors('native');
  return Object.fromEntries(
    Object.entries(native).map(([status, value]) => [status, messageErrorResponse(String((value as { description: string }).description))]),
  );
};

const kserveModelParams = (modelName: string, versioned: boolean): Json[] => [
  { name: 'model', in: 'path', required: true, schema: { type: 'string' }, example: modelName },
  ...(versioned ? [{ name: 'version', in: 'path', required: true, schema: { type: 'string', const: '1' } }] : []),
];

/** The KServe v2 / Open Inference Protocol paths (`tritonclient.http`). */
function kservePaths(modelName: string, security: Json[]): Json {
  const tags = ['kserve-v2'];
  const metadata = (versioned: boolean): Json => ({
    get: {
      summary: 'KServe v2 model metadata: input IMAGE (BYTES [1]); outputs BOXES, SCORES, CLASS_IDS, LABELS',
      tags,
      security,
      parameters: kserveModelParams(modelName, versioned),
      responses: {
        '200': {
          description: 'Model metadata',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/KServeModelMetadata' } } },
        },
        '401': messageErrorResponse('Missing or wrong API key'),
        '404': messageErrorResponse('Unknown model or version (MODEL_NOT_FOUND)'),
        '503': messageErrorResponse('The model is loading or failed to load (MODEL_NOT_READY)'),
      },
    },
  });
  const ready = (versioned: boolean): Json => ({
    get: {
      summary: 'KServe v2 model readiness',
      tags,
      security,
      parameters: kserveModelParams(modelName, versioned),
      responses: {
        '200': { description: '{"name", "ready": true}' },
        '401': messageErrorResponse('Missing or wrong API key'),
        '404': messageErrorResponse('Unknown model or version (MODEL_NOT_FOUND)'),
        '503': {
          description:
            '{"name", "ready": false}: the server is starting or draining; or {"error"}: the model is loading or failed to load (MODEL_NOT_READY)',
        },
      },
    },
  });
  const config = (versioned: boolean): Json => ({
    get: {
      summary: "Triton's model configuration: max_batch_size 0, input IMAGE TYPE_STRING [1], the four outputs",
      tags,
      security,
      parameters: kserveModelParams(modelName, versioned),
      responses: {
        '200': { description: 'Model configuration', content: { 'application/json': { schema: { type: 'object' } } } },
        '401': messageErrorResponse('Missing or wrong API key'),
        '404': messageErrorResponse('Unknown model or version (MODEL_NOT_FOUND)'),
        '503': messageErrorResponse('The model is loading or failed to load (MODEL_NOT_READY)'),
      },
    },
  });
  const infer = (versioned: boolean): Json => ({
    post: {
      summary:
        'KServe v2 inference: one image as input IMAGE (BYTES, shape [1]), base64 in JSON or raw bytes with the binary tensor extension',
      tags,
      security,
      parameters: [
        ...kserveModelParams(modelName, versioned),
        {
          name: 'Inference-Header-Content-Length',
          in: 'header',
          schema: { type: 'integer', minimum: 0 },
          description: 'Binary tensor extension: bytes of JSON before the binary tensors',
        },
      ],
      requestBody: {
        required: true,
        description:
          'JSON {"inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [1], "data": ["<base64 image>"]}], "outputs": [{"name": "BOXES", "parameters": {"binary_data": false}}], "parameters": {"score_threshold": 0.5, "max_detections": 100, "binary_data_output": false}}; ' +
          'or that JSON (with "parameters": {"binary_data_size": K} on the input instead of data) followed by the tensor: a 4-byte little-endian length and the image bytes.',
        content: {
          'application/json': { schema: { $ref: '#/components/schemas/KServeInferRequest' } },
          'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
        },
      },
      responses: {
        '200': {
          description:
            'BOXES FP32 [N,4] (xmin, ymin, xmax, ymax in original pixels), SCORES FP32 [N] descending, CLASS_IDS INT64 [N], LABELS BYTES [N]; binary outputs follow the JSON (Inference-Header-Content-Length)',
          content: {
            'application/json': { schema: { type: 'object' } },
            'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
          },
        },
        ...messageErrors(),
        '400': messageErrorResponse(
          'Malformed request (INFER_REQUEST_INVALID), more than one image (BATCH_UNSUPPORTED), bad image or parameter',
        ),
        '404': messageErrorResponse('Unknown model or version (MODEL_NOT_FOUND)'),
      },
    },
  });
  return {
    '/v2': {
      get: {
        summary: 'KServe v2 server metadata',
        tags,
        responses: { '200': { description: '{"name", "version", "extensions": ["binary_tensor_data"]}' } },
      },
    },
    '/v2/health/live': { get: { summary: 'KServe v2 liveness', tags, responses: { '200': { description: '{"live": true}' } } } },
    '/v2/health/ready': {
      get: {
        summary: 'KServe v2 readiness',
        tags,
        responses: { '200': { description: '{"ready": true}' }, '503': { description: '{"ready": false}: starting or draining' } },
      },
    },
    '/v2/models/{model}': metadata(false),
    '/v2/models/{model}/versions/{version}': metadata(true),
    '/v2/models/{model}/ready': ready(false),
    '/v2/models/{model}/versions/{version}/ready': ready(true),
    '/v2/models/{model}/config': config(false),
    '/v2/models/{model}/versions/{version}/config': config(true),
    '/v2/models/{model}/infer': infer(false),
    '/v2/models/{model}/versions/{version}/infer': infer(true),
  };
}

export function buildOpenApi(model: ServedModel, config: ServerConfig): Json {
  const labels = model.classes.filter((label, id) => id > 0 && label !== 'N/A');
  const security = config.apiKeys.length > 0 ? [{ bearer: [] }] : [];
  const metricsSecurity = config.apiKeys.length > 0 && config.metricsAuth ? [{ bearer: [] }] : [];
  const detectParams = [
    {
      name: 'score_threshold',
      in: 'query',
      schema: { type: 'number', minimum: 0, maximum: 1 },
      description: `Keep detections with score >= this (default ${config.scoreThreshold ?? model.roi_heads.score_thresh})`,
    },
    {
      name: 'max_detections',
      in: 'query',
      schema: { type: 'integer', minimum: 1, maximum: 10000 },
      description: `At most this many detections, best first (default ${config.maxDetections ?? model.roi_heads.detections_per_img})`,
    },
    {
      name: 'classes',
      in: 'query',
      schema: { type: 'string', minLength: 1 },
      description: `Comma-separated class labels or ids to keep (labels: ${labels.slice(0, 20).join(', ')}${labels.length > 20 ? ', …' : ''})`,
    },
    {
      name: 'model',
      in: 'query',
      schema: { type: 'string' },
      description: 'Model to run (GET /v1/models lists them; also the multipart field model); default: the default model',
    },
    {
      name: 'render',
      in: 'query',
      schema: { type: 'string', enum: ['1', '0', 'true', 'false', 'png', 'jpeg', 'jpg'] },
      description:
        'Return the image with the boxes drawn instead of JSON (1, true, png: PNG; jpeg, jpg: JPEG; 0, false: JSON; case-insensitive; also chosen by Accept: image/png or image/jpeg)',
    },
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
              model: { type: 'string' },
            },
            true,
          ),
          responses: {
            '200': {
              description:
                'Detections in original-image pixels (continuous convention: the image spans [0, W] x [0, H]), or the rendered image',
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
      '/v1/vision/detection': {
        post: deepstackOperation('DeepStack / CodeProject.AI compatible detection (Frigate, Blue Iris, Home Assistant)', []),
      },
      '/v1/vision/custom/{model}': {
        post: deepstackOperation(
          'DeepStack custom-model route: {model} names a served model (GET /v1/models, POST /v1/vision/custom/list)',
          [{ name: 'model', in: 'path', required: true, schema: { type: 'string' }, example: model.name }],
          { '404': deepstackErrorResponse('No model of that name (MODEL_NOT_FOUND)') },
        ),
      },
      '/v1/vision/custom/list': {
        post: {
          summary: 'CodeProject.AI / Blue Iris: the custom models this server answers for',
          tags: ['deepstack'],
          security,
          requestBody: {
            required: false,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  properties: { api_key: { description: 'API key (alternative to Authorization: Bearer); any text' } },
                },
              },
            },
          },
          responses: {
            '200': {
              description: '{"success": true, "models": [names], …CodeProject.AI fields}',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['success', 'models'],
                    properties: { success: { type: 'boolean' }, models: { type: 'array', items: { type: 'string' } } },
                  },
                },
              },
            },
            ...listErrors(),
          },
        },
      },
      '/v1/status/updateavailable': {
        get: {
          summary: "CodeProject.AI's update check: always updateAvailable false (this server does not check)",
          tags: ['deepstack'],
          responses: { '200': { description: '{"success": true, "updateAvailable": false, "version", "current", "latest"}' } },
        },
      },
      '/models/{model}': {
        post: {
          summary: 'Hugging Face Inference API object detection (huggingface_hub InferenceClient, @huggingface/inference)',
          tags: ['huggingface'],
          security,
          parameters: [{ name: 'model', in: 'path', required: true, schema: { type: 'string' }, example: model.name }],
          requestBody: {
            required: true,
            description:
              'The raw image with any or no Content-Type, or JSON {"inputs": "<base64 image>", "parameters": {"threshold": t}} (Content-Type: application/json). Default threshold: the server\'s score threshold.',
            content: {
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              'image/*': { schema: { type: 'string', format: 'binary' } },
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['inputs'],
                  properties: {
                    inputs: { type: 'string', description: 'base64 image' },
                    parameters: { type: 'object', properties: { threshold: { type: 'number', minimum: 0, maximum: 1 } } },
                  },
                },
              },
            },
          },
          responses: {
            '200': {
              description: 'A bare list of detections, best first, in original-image pixels',
              content: { 'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/HuggingFaceDetection' } } } },
            },
            ...messageErrors(),
            '404': messageErrorResponse('Unknown model (MODEL_NOT_FOUND)'),
          },
        },
      },
      ...kservePaths(model.name, security),
      '/v1/status/ping': {
        get: { summary: 'DeepStack-style liveness ping', tags: ['deepstack'], responses: { '200': { description: '{"success": true}' } } },
      },
      '/v1/models': {
        get: {
          summary: 'The served models: name, state, error, architecture, classes, input sizes, defaults, provenance',
          tags: ['detection'],
          security,
          responses: {
            '200': {
              description:
                '`models`: the models that answer, with their metadata and state; `repository`: every model with its state (loading, ready, failed, unloaded) and last load error; `default`: the default model',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            '401': errorResponse('Missing or wrong API key'),
          },
        },
      },
      '/': {
        get: {
          summary: 'Demo page: pick or drop an image, see the boxes and the JSON',
          tags: ['ops'],
          responses: { '200': { description: 'HTML', content: { 'text/html': {} } } },
        },
      },
      '/healthz': {
        get: { summary: 'Liveness: 200 while the process serves HTTP', tags: ['ops'], responses: { '200': { description: 'alive' } } },
      },
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
          responses: {
            '200': { description: 'Prometheus text format', content: { 'text/plain': {} } },
            '401': errorResponse('Missing or wrong API key'),
          },
        },
      },
      '/v2/repository/index': {
        post: {
          summary:
            'Triton repository index: rescans the model repository (as one poll), then lists every model with state READY, LOADING or UNAVAILABLE and the reason; body {"ready": true} keeps the ready ones',
          tags: ['repository'],
          security,
          requestBody: {
            required: false,
            content: { 'application/json': { schema: { type: 'object', properties: { ready: { type: 'boolean' } } } } },
          },
          responses: {
            '200': {
              description: 'Array of {name, version, state, reason}',
              content: { 'application/json': { schema: { type: 'array' } } },
            },
            ...repositoryErrors(),
            '400': tritonError('The body is not JSON (BAD_REQUEST), or not an object with an optional boolean ready (INVALID_PARAMETER)'),
            '404': tritonError('The server serves no model repository (NOT_FOUND): an app created with one detector'),
            '413': tritonError('The body is over 16 KiB (BODY_TOO_LARGE)'),
          },
        },
      },
      '/v2/repository/models/{model}/load': {
        post: {
          summary:
            'Triton repository load: (re)loads the model directory {model}, warms it up, and answers once it takes requests; a failed load keeps the working version',
          tags: ['repository'],
          security,
          parameters: [{ name: 'model', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The model status', content: { 'application/json': { schema: { type: 'object' } } } },
            ...repositoryErrors(),
            '400': tritonError('The model failed to load (MODEL_LOAD_FAILED)'),
            '404': tritonError('No such model directory (MODEL_NOT_FOUND), or the server serves no model repository (NOT_FOUND)'),
          },
        },
      },
      '/v2/repository/models/{model}/unload': {
        post: {
          summary:
            'Triton repository unload: stops serving {model} (running requests finish first); polling leaves it unloaded until a load',
          tags: ['repository'],
          security,
          parameters: [{ name: 'model', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: 'The model status', content: { 'application/json': { schema: { type: 'object' } } } },
            ...repositoryErrors(),
            '404': tritonError('Unknown model (MODEL_NOT_FOUND), or the server serves no model repository (NOT_FOUND)'),
            '409': tritonError('The default model cannot be unloaded (MODEL_UNLOAD_REFUSED)'),
          },
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
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string', enum: Object.keys(ERRORS) }, message: { type: 'string' } },
            },
          },
        },
        Box: {
          type: 'object',
          required: ['xmin', 'ymin', 'xmax', 'ymax'],
          properties: { xmin: { type: 'number' }, ymin: { type: 'number' }, xmax: { type: 'number' }, ymax: { type: 'number' } },
        },
        Detection: {
          type: 'object',
          required: ['label', 'class_id', 'score', 'box'],
          properties: {
            label: { type: 'string' },
            class_id: { type: 'integer' },
            score: { type: 'number' },
            box: { $ref: '#/components/schemas/Box' },
          },
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
              description:
                'Per-stage durations: decode, transform, backbone_rpn, rpn_postprocess, box_head, postprocess, total; queue = wait for a slot',
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
            command: { type: 'string', description: "CodeProject.AI: 'detect' or 'custom'" },
            moduleId: { type: 'string' },
            moduleName: { type: 'string' },
            executionProvider: { type: 'string' },
            canUseGPU: { type: 'boolean' },
            inferenceDevice: { type: 'string' },
            analysisRoundTripMs: { type: 'integer' },
            processedBy: { type: 'string' },
            timestampUTC: { type: 'string' },
          },
        },
        HuggingFaceDetection: {
          type: 'object',
          required: ['label', 'score', 'box'],
          properties: { label: { type: 'string' }, score: { type: 'number' }, box: { $ref: '#/components/schemas/Box' } },
        },
        MessageError: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
        KServeInferRequest: {
          type: 'object',
          required: ['inputs'],
          properties: {
            id: { type: 'string' },
            inputs: {
              type: 'array',
              minItems: 1,
              maxItems: 1,
              items: {
                type: 'object',
                required: ['name', 'datatype', 'shape', 'data'],
                properties: {
                  name: { type: 'string', const: 'IMAGE' },
                  datatype: { type: 'string', const: 'BYTES' },
                  shape: { type: 'array', items: { type: 'integer', const: 1 }, minItems: 1, maxItems: 1 },
                  data: {
                    type: 'array',
                    items: { type: 'string', contentEncoding: 'base64' },
                    minItems: 1,
                    maxItems: 1,
                    description: 'The encoded image, base64',
                  },
                },
              },
            },
            outputs: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name'],
                properties: {
                  name: { type: 'string', enum: ['BOXES', 'SCORES', 'CLASS_IDS', 'LABELS'] },
                  parameters: { type: 'object', properties: { binary_data: { type: 'boolean' } } },
                },
              },
            },
            parameters: {
              type: 'object',
              properties: {
                score_threshold: { type: 'number', minimum: 0, maximum: 1 },
                max_detections: { type: 'integer', minimum: 1, maximum: 10000 },
                binary_data_output: { type: 'boolean' },
              },
            },
          },
        },
        KServeModelMetadata: {
          type: 'object',
          required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
          properties: {
            name: { type: 'string' },
            versions: { type: 'array', items: { type: 'string' } },
            platform: { type: 'string' },
            inputs: { type: 'array', items: { type: 'object' } },
            outputs: { type: 'array', items: { type: 'object' } },
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
