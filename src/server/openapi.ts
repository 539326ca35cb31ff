/**
 * The OpenAPI 3.1 description of every route (GET /openapi.json), built from the route table
 * (routes/table.ts): its paths, methods and error styles come from there, one operation per route
 * and method (OPERATIONS, which the compiler checks against the table), and the parameters'
 * bounds and values from parameters.ts, the declarations request-params.ts validates by.
 */
import { LISTED_CLASSES, usableClasses } from '../detection/classes';
import { SUPPORTED_FORMATS_DETAIL } from '../detection/formats';
import type { ServerConfig } from './config';
import type { ErrorStyle } from './error-style';
import { ERRORS, HttpError } from './errors';
import { CLASSES, HF_THRESHOLD, MAX_DETECTIONS, MIN_CONFIDENCE, MODEL, RENDER, SCORE_THRESHOLD } from './parameters';
import type { Method, RouteSpec } from './routes/context';
import { openApiPath, ROUTES, type Route } from './routes/table';
import type { ServedModel } from './served-model';

type Json = Record<string, unknown>;

/** What an operation's description depends on: the default model, the config and the route's error style. */
interface DocContext {
  model: ServedModel;
  config: ServerConfig;
  /** The bearer requirement of the routes behind the API keys (none when keys are off). */
  security: Json[];
  metricsSecurity: Json[];
  /** An error response in the route's error style (routes/table.ts). */
  error(description: string): Json;
}

type Operation = (doc: DocContext) => Json;

/** One operation for each route of the table and each of its methods; a route or method more or less does not compile. */
type Operations = { readonly [R in Route as R['path']]: { readonly [M in R['methods'][number]]: Operation } };

const schemaRef = (name: string): Json => ({ 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } });

/** The error body of each style (error-style.ts); Triton's is written out, the others are components. */
const ERROR_CONTENT: Readonly<Record<ErrorStyle, Json>> = {
  native: schemaRef('Error'),
  deepstack: schemaRef('DeepStackError'),
  message: schemaRef('MessageError'),
  triton: {
    'application/json': {
      schema: { type: 'object', required: ['error'], properties: { error: { type: 'string' }, code: { type: 'string' } } },
    },
  },
};

const errorResponse = (style: ErrorStyle, description: string): Json => ({ description, content: ERROR_CONTENT[style] });

const modelPathParam = (example?: string): Json => ({
  name: 'model',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  ...(example === undefined ? {} : { example }),
});

const imageBody = (multipartFields: Json, required: boolean): Json => ({
  required,
  description:
    `The image, its format detected from the bytes (the content type is not trusted): ${SUPPORTED_FORMATS_DETAIL}. ` +
    "Either the raw body with any Content-Type, or multipart/form-data with the file in field 'image'.",
  content: {
    'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
    'image/*': { schema: { type: 'string', format: 'binary' } },
    'multipart/form-data': {
      schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary' }, ...multipartFields } },
    },
  },
});

/** Errors every repository route can answer. */
const repositoryErrors = (doc: DocContext): Json => ({
  '401': doc.error('Missing or wrong API key (UNAUTHORIZED), when keys are configured'),
  '503': doc.error('The server is shutting down (SHUTTING_DOWN)'),
  '500': doc.error('Internal error (INTERNAL); never carries internals'),
});

/** Errors of the routes that read an image and run a model; `keyInBody`: DeepStack's, whose API key may come in the body. */
const detectionErrors = (doc: DocContext, keyInBody: boolean): Json => ({
  '400': doc.error(
    'Bad input: empty, corrupt or truncated image, invalid parameter, malformed multipart body (codes IMAGE_EMPTY, ' +
      'IMAGE_DECODE_FAILED, IMAGE_MISSING, INVALID_PARAMETER, MULTIPART_INVALID)',
  ),
  '401': doc.error('Missing or wrong API key (UNAUTHORIZED), when keys are configured'),
  ...(keyInBody
    ? { '408': doc.error('The API key is in the body and the body arrived under the minimum transfer rate (UPLOAD_TOO_SLOW)') }
    : {}),
  '413': doc.error(
    'Body over the byte limit (BODY_TOO_LARGE), multipart body over the field or part limit (MULTIPART_TOO_MANY_PARTS) or image ' +
      'over the pixel limit (IMAGE_TOO_LARGE)',
  ),
  '415': doc.error('The bytes are not an image in a supported format (IMAGE_UNSUPPORTED_FORMAT)'),
  '404': doc.error('Unknown or unloaded model (MODEL_NOT_FOUND)'),
  '503': doc.error(
    'Every inference slot and queue place is taken (QUEUE_FULL, with Retry-After), the model is loading or failed to load ' +
      '(MODEL_NOT_READY), or the server is shutting down (SHUTTING_DOWN)',
  ),
  '504': doc.error('The request did not finish within the deadline (DEADLINE_EXCEEDED)'),
  '500': doc.error('Internal error (INTERNAL); never carries internals'),
});

/**
 * POST /v1/vision/custom/list reads its optional multipart body (for `api_key`) under the
 * detection routes' limits, but decodes no image and names no model.
 */
const listErrors = (doc: DocContext): Json => ({
  '400': doc.error('Malformed multipart body (MULTIPART_INVALID) or a field given twice (INVALID_PARAMETER)'),
  '401': doc.error('Missing or wrong API key (UNAUTHORIZED), when keys are configured'),
  '408': doc.error('The API key is in the body and the body arrived under the minimum transfer rate (UPLOAD_TOO_SLOW)'),
  '413': doc.error('Body over the byte limit (BODY_TOO_LARGE) or multipart body over the field or part limit (MULTIPART_TOO_MANY_PARTS)'),
  '503': doc.error('The key is in the body and every place for such uploads is taken (QUEUE_FULL, with Retry-After)'),
  '504': doc.error('The request did not finish within the deadline (DEADLINE_EXCEEDED)'),
  '500': doc.error('Internal error (INTERNAL); never carries internals'),
});

/** The query parameters of POST /v1/detect. */
function detectParams(doc: DocContext): Json[] {
  const { model, config } = doc;
  const labels = usableClasses(model.classes).map((c) => c.label);
  return [
    {
      name: SCORE_THRESHOLD.name,
      in: 'query',
      schema: SCORE_THRESHOLD.schema,
      description: `Keep detections with score >= this (default ${config.scoreThreshold ?? model.roi_heads.score_thresh})`,
    },
    {
      name: MAX_DETECTIONS.name,
      in: 'query',
      schema: MAX_DETECTIONS.schema,
      description: `At most this many detections, best first (default ${config.maxDetections ?? model.roi_heads.detections_per_img})`,
    },
    {
      name: CLASSES.name,
      in: 'query',
      schema: CLASSES.schema,
      description:
        `Comma-separated class labels or ids to keep (labels: ${labels.slice(0, LISTED_CLASSES).join(', ')}` +
        `${labels.length > LISTED_CLASSES ? ', …' : ''})`,
    },
    {
      name: MODEL.name,
      in: 'query',
      schema: MODEL.schema,
      description: 'Model to run (GET /v1/models lists them; also the multipart field model); default: the default model',
    },
    {
      name: RENDER.name,
      in: 'query',
      schema: RENDER.schema,
      description:
        'Return the image with the boxes drawn instead of JSON (1, true, png: PNG; jpeg, jpg: JPEG; 0, false: JSON; ' +
        'case-insensitive; also chosen by Accept: image/png or image/jpeg)',
    },
  ];
}

/** The DeepStack detection routes: one operation, `parameters` and extra responses aside. */
const deepstackDetect = (
  summary: string,
  parameters: (doc: DocContext) => Json[],
  extraResponses: (doc: DocContext) => Json,
): Operation => {
  return (doc) => ({
    summary,
    tags: ['deepstack'],
    security: doc.security,
    parameters: parameters(doc),
    requestBody: imageBody(
      {
        [MIN_CONFIDENCE.name]: {
          ...MIN_CONFIDENCE.schema,
          default: MIN_CONFIDENCE.default,
          description: 'Keep predictions with confidence >= this',
        },
        // any text: a multipart field has no type, and a server without keys ignores it
        api_key: { description: 'API key (alternative to Authorization: Bearer); any text' },
      },
      true,
    ),
    responses: {
      '200': {
        description: 'Detections in DeepStack / CodeProject.AI form (integer pixel coordinates)',
        content: schemaRef('DeepStackResult'),
      },
      ...detectionErrors(doc, true),
      ...extraResponses(doc),
    },
  });
};

/** A KServe v2 model GET (metadata, ready, config), unversioned or under /versions/{version}. */
const kserveModelGet =
  (summary: string, responses: (doc: DocContext) => Json, versioned: boolean): Operation =>
  (doc) => ({
    summary,
    tags: ['kserve-v2'],
    security: doc.security,
    parameters: [
      modelPathParam(doc.model.name),
      ...(versioned ? [{ name: 'version', in: 'path', required: true, schema: { type: 'string', const: '1' } }] : []),
    ],
    responses: responses(doc),
  });

const kserveMetadata = (versioned: boolean): Operation =>
  kserveModelGet(
    'KServe v2 model metadata: input IMAGE (BYTES [1]); outputs BOXES, SCORES, CLASS_IDS, LABELS',
    (doc) => ({
      '200': { description: 'Model metadata', content: schemaRef('KServeModelMetadata') },
      '401': doc.error('Missing or wrong API key'),
      '404': doc.error('Unknown model or version (MODEL_NOT_FOUND)'),
      '503': doc.error('The model is loading or failed to load (MODEL_NOT_READY)'),
    }),
    versioned,
  );

const kserveReady = (versioned: boolean): Operation =>
  kserveModelGet(
    'KServe v2 model readiness',
    (doc) => ({
      '200': { description: '{"name", "ready": true}' },
      '401': doc.error('Missing or wrong API key'),
      '404': doc.error('Unknown model or version (MODEL_NOT_FOUND)'),
      '503': {
        description:
          '{"name", "ready": false}: the server is starting or draining; or {"error"}: the model is loading or failed to load ' +
          '(MODEL_NOT_READY)',
      },
    }),
    versioned,
  );

const kserveConfig = (versioned: boolean): Operation =>
  kserveModelGet(
    "Triton's model configuration: max_batch_size 0, input IMAGE TYPE_STRING [1], the four outputs",
    (doc) => ({
      '200': { description: 'Model configuration', content: { 'application/json': { schema: { type: 'object' } } } },
      '401': doc.error('Missing or wrong API key'),
      '404': doc.error('Unknown model or version (MODEL_NOT_FOUND)'),
      '503': doc.error('The model is loading or failed to load (MODEL_NOT_READY)'),
    }),
    versioned,
  );

const kserveInfer =
  (versioned: boolean): Operation =>
  (doc) => ({
    summary:
      'KServe v2 inference: one image as input IMAGE (BYTES, shape [1]), base64 in JSON or raw bytes with the binary tensor extension',
    tags: ['kserve-v2'],
    security: doc.security,
    parameters: [
      modelPathParam(doc.model.name),
      ...(versioned ? [{ name: 'version', in: 'path', required: true, schema: { type: 'string', const: '1' } }] : []),
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
        'JSON {"inputs": [{"name": "IMAGE", "datatype": "BYTES", "shape": [1], "data": ["<base64 image>"]}], "outputs": [{"name": ' +
        '"BOXES", "parameters": {"binary_data": false}}], "parameters": {"score_threshold": 0.5, "max_detections": 100, ' +
        '"binary_data_output": false}}; ' +
        'or that JSON (with "parameters": {"binary_data_size": K} on the input instead of data) followed by the tensor: a 4-byte ' +
        'little-endian length and the image bytes.',
      content: {
        'application/json': { schema: { $ref: '#/components/schemas/KServeInferRequest' } },
        'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
      },
    },
    responses: {
      '200': {
        description:
          'BOXES FP32 [N,4] (xmin, ymin, xmax, ymax in original pixels), SCORES FP32 [N] descending, CLASS_IDS INT64 [N], LABELS ' +
          'BYTES [N]; binary outputs follow the JSON (Inference-Header-Content-Length)',
        content: {
          'application/json': { schema: { type: 'object' } },
          'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
        },
      },
      ...detectionErrors(doc, false),
      '400': doc.error('Malformed request (INFER_REQUEST_INVALID), more than one image (BATCH_UNSUPPORTED), bad image or parameter'),
      '404': doc.error('Unknown model or version (MODEL_NOT_FOUND)'),
    },
  });

const OPERATIONS: Operations = {
  '/': {
    GET: () => ({
      summary: 'Demo page: pick or drop an image, see the boxes and the JSON',
      tags: ['ops'],
      responses: { '200': { description: 'HTML', content: { 'text/html': {} } } },
    }),
  },
  '/v1/detect': {
    POST: (doc) => ({
      summary: 'Detect objects in one image',
      tags: ['detection'],
      security: doc.security,
      parameters: detectParams(doc),
      requestBody: imageBody(
        {
          [SCORE_THRESHOLD.name]: { type: SCORE_THRESHOLD.schema.type },
          [MAX_DETECTIONS.name]: { type: MAX_DETECTIONS.schema.type },
          [CLASSES.name]: { type: CLASSES.schema.type },
          [MODEL.name]: { type: MODEL.schema.type },
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
        ...detectionErrors(doc, false),
      },
    }),
  },
  '/v1/vision/detection': {
    POST: deepstackDetect(
      'DeepStack / CodeProject.AI compatible detection (Frigate, Blue Iris, Home Assistant)',
      () => [],
      () => ({}),
    ),
  },
  '/v1/vision/custom/list': {
    POST: (doc) => ({
      summary: 'CodeProject.AI / Blue Iris: the custom models this server answers for',
      tags: ['deepstack'],
      security: doc.security,
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
        ...listErrors(doc),
      },
    }),
  },
  '/v1/vision/custom/:model': {
    POST: deepstackDetect(
      'DeepStack custom-model route: {model} names a served model (GET /v1/models, POST /v1/vision/custom/list)',
      (doc) => [modelPathParam(doc.model.name)],
      (doc) => ({ '404': doc.error('No model of that name (MODEL_NOT_FOUND)') }),
    ),
  },
  '/v1/status/ping': {
    GET: () => ({
      summary: 'DeepStack-style liveness ping',
      tags: ['deepstack'],
      responses: { '200': { description: '{"success": true}' } },
    }),
  },
  '/v1/status/updateavailable': {
    GET: () => ({
      summary: "CodeProject.AI's update check: always updateAvailable false (this server does not check)",
      tags: ['deepstack'],
      responses: { '200': { description: '{"success": true, "updateAvailable": false, "version", "current", "latest"}' } },
    }),
  },
  '/models/:model': {
    POST: (doc) => ({
      summary: 'Hugging Face Inference API object detection (huggingface_hub InferenceClient, @huggingface/inference)',
      tags: ['huggingface'],
      security: doc.security,
      parameters: [modelPathParam(doc.model.name)],
      requestBody: {
        required: true,
        description:
          'The raw image with any or no Content-Type, or JSON {"inputs": "<base64 image>", "parameters": {"threshold": t}} ' +
          "(Content-Type: application/json). Default threshold: the server's score threshold.",
        content: {
          'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
          'image/*': { schema: { type: 'string', format: 'binary' } },
          'application/json': {
            schema: {
              type: 'object',
              required: ['inputs'],
              properties: {
                inputs: { type: 'string', description: 'base64 image' },
                parameters: { type: 'object', properties: { threshold: HF_THRESHOLD.schema } },
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
        ...detectionErrors(doc, false),
        '404': doc.error('Unknown model (MODEL_NOT_FOUND)'),
      },
    }),
  },
  '/v2': {
    GET: () => ({
      summary: 'KServe v2 server metadata',
      tags: ['kserve-v2'],
      responses: { '200': { description: '{"name", "version", "extensions": ["binary_tensor_data"]}' } },
    }),
  },
  '/v2/health/live': {
    GET: () => ({ summary: 'KServe v2 liveness', tags: ['kserve-v2'], responses: { '200': { description: '{"live": true}' } } }),
  },
  '/v2/health/ready': {
    GET: () => ({
      summary: 'KServe v2 readiness',
      tags: ['kserve-v2'],
      responses: { '200': { description: '{"ready": true}' }, '503': { description: '{"ready": false}: starting or draining' } },
    }),
  },
  '/v2/models/:model': { GET: kserveMetadata(false) },
  '/v2/models/:model/versions/:version': { GET: kserveMetadata(true) },
  '/v2/models/:model/ready': { GET: kserveReady(false) },
  '/v2/models/:model/versions/:version/ready': { GET: kserveReady(true) },
  '/v2/models/:model/config': { GET: kserveConfig(false) },
  '/v2/models/:model/versions/:version/config': { GET: kserveConfig(true) },
  '/v2/models/:model/infer': { POST: kserveInfer(false) },
  '/v2/models/:model/versions/:version/infer': { POST: kserveInfer(true) },
  '/v1/models': {
    GET: (doc) => ({
      summary: 'The served models: name, state, error, architecture, precision, classes, input sizes, defaults, provenance',
      tags: ['detection'],
      security: doc.security,
      responses: {
        '200': {
          description:
            '`models`: the models that answer, with their metadata and state; `repository`: every model with its state (loading, ' +
            'ready, failed, unloaded) and last load error; `default`: the default model',
          content: { 'application/json': { schema: { type: 'object' } } },
        },
        '401': doc.error('Missing or wrong API key'),
      },
    }),
  },
  '/healthz': {
    GET: () => ({ summary: 'Liveness: 200 while the process serves HTTP', tags: ['ops'], responses: { '200': { description: 'alive' } } }),
  },
  '/readyz': {
    GET: () => ({
      summary: 'Readiness: 200 once the model is loaded and a warm-up inference ran; 503 while starting or draining',
      tags: ['ops'],
      responses: { '200': { description: 'ready' }, '503': { description: 'starting or draining' } },
    }),
  },
  '/metrics': {
    GET: (doc) => ({
      summary: 'Prometheus metrics',
      tags: ['ops'],
      security: doc.metricsSecurity,
      responses: {
        '200': { description: 'Prometheus text format', content: { 'text/plain': {} } },
        '401': doc.error('Missing or wrong API key'),
      },
    }),
  },
  '/openapi.json': {
    GET: () => ({ summary: 'This document', tags: ['ops'], responses: { '200': { description: 'OpenAPI 3.1' } } }),
  },
  '/v2/repository/index': {
    POST: (doc) => ({
      summary:
        'Triton repository index: rescans the model repository (as one poll), then lists every model with state READY, LOADING or ' +
        'UNAVAILABLE and the reason; body {"ready": true} keeps the ready ones',
      tags: ['repository'],
      security: doc.security,
      requestBody: {
        required: false,
        content: { 'application/json': { schema: { type: 'object', properties: { ready: { type: 'boolean' } } } } },
      },
      responses: {
        '200': {
          description: 'Array of {name, version, state, reason}',
          content: { 'application/json': { schema: { type: 'array' } } },
        },
        ...repositoryErrors(doc),
        '400': doc.error('The body is not JSON (BAD_REQUEST), or not an object with an optional boolean ready (INVALID_PARAMETER)'),
        '404': doc.error('The server serves no model repository (NOT_FOUND): an app created with one detector'),
        '413': doc.error('The body is over 16 KiB (BODY_TOO_LARGE)'),
        '503': doc.error('The server is shutting down (SHUTTING_DOWN), or the model repository cannot be read (REPOSITORY_UNREADABLE)'),
      },
    }),
  },
  '/v2/repository/models/:model/load': {
    POST: (doc) => ({
      summary:
        'Triton repository load: (re)loads the model directory {model}, warms it up, and answers once it takes requests; a failed ' +
        'load keeps the working version',
      tags: ['repository'],
      security: doc.security,
      parameters: [modelPathParam()],
      responses: {
        '200': { description: 'The model status', content: { 'application/json': { schema: { type: 'object' } } } },
        ...repositoryErrors(doc),
        '400': doc.error('The model failed to load (MODEL_LOAD_FAILED)'),
        '404': doc.error('No such model directory (MODEL_NOT_FOUND), or the server serves no model repository (NOT_FOUND)'),
        '503': doc.error('The server is shutting down (SHUTTING_DOWN), or the model repository cannot be read (REPOSITORY_UNREADABLE)'),
      },
    }),
  },
  '/v2/repository/models/:model/unload': {
    POST: (doc) => ({
      summary: 'Triton repository unload: stops serving {model} (running requests finish first); polling leaves it unloaded until a load',
      tags: ['repository'],
      security: doc.security,
      parameters: [modelPathParam()],
      responses: {
        '200': { description: 'The model status', content: { 'application/json': { schema: { type: 'object' } } } },
        ...repositoryErrors(doc),
        '404': doc.error('Unknown model (MODEL_NOT_FOUND), or the server serves no model repository (NOT_FOUND)'),
        '409': doc.error('The default model cannot be unloaded (MODEL_UNLOAD_REFUSED)'),
      },
    }),
  },
};

/** The path items of the document: every route of the table, every method, in the table's order. */
function paths(model: ServedModel, config: ServerConfig): Json {
  const security = config.apiKeys.length > 0 ? [{ bearer: [] }] : [];
  const metricsSecurity = config.apiKeys.length > 0 && config.metricsAuth ? [{ bearer: [] }] : [];
  const operations: Readonly<Record<string, Partial<Record<Method, Operation>>>> = OPERATIONS;
  const routes: readonly RouteSpec[] = ROUTES;
  return Object.fromEntries(
    routes.map((route) => {
      const style = route.errorStyle ?? 'native';
      const doc: DocContext = { model, config, security, metricsSecurity, error: (description) => errorResponse(style, description) };
      const items = route.methods.map((method) => {
        const operation = operations[route.path]?.[method];
        // the type of OPERATIONS makes this unreachable; it keeps a bad edit from serving half a document
        if (operation === undefined) throw new HttpError('INTERNAL', `openapi.ts has no operation for ${method} ${route.path}`);
        return [method.toLowerCase(), operation(doc)];
      });
      return [openApiPath(route.path), Object.fromEntries(items)];
    }),
  );
}

export function buildOpenApi(model: ServedModel, config: ServerConfig): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'cpwc-detect',
      version: '1',
      description:
        `Object detection with a Faster R-CNN / CPWC ResNet-50 model (serving '${model.name}', ${model.architecture}). ` +
        `Errors: ${Object.keys(ERRORS).join(', ')}.`,
    },
    paths: paths(model, config),
    components: COMPONENTS,
  };
}

const COMPONENTS: Json = {
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
            [SCORE_THRESHOLD.name]: SCORE_THRESHOLD.schema,
            [MAX_DETECTIONS.name]: MAX_DETECTIONS.schema,
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
};
