/**
 * KServe v2 / Open Inference Protocol tensors over REST, with Triton's binary tensor extension:
 * the body is `Inference-Header-Content-Length` bytes of JSON followed by the binary tensors in the
 * order of the JSON's inputs (or outputs) that carry `parameters.binary_data_size`. A BYTES tensor
 * in binary is each element as a 4-byte little-endian length and its bytes; FP32 and INT64 are
 * little-endian, row-major.
 */
import { HttpError } from '../errors';

export type Datatype = 'BYTES' | 'FP32' | 'INT64';

export interface RequestTensor {
  name: string;
  datatype: string;
  shape: number[];
  /** The elements of a BYTES tensor, from JSON (base64 strings, decoded) or binary. */
  elements: Buffer[];
}

export interface RequestedOutput {
  name: string;
  binary: boolean;
}

export interface InferRequest {
  id: string | undefined;
  inputs: RequestTensor[];
  /** Undefined: every output, in binary when `binary_data_output` is true. */
  outputs: RequestedOutput[] | undefined;
  parameters: Record<string, unknown>;
}

export interface OutputTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** Flat, row-major. */
  values: number[] | bigint[] | string[];
}

function invalid(message: string): HttpError {
  return new HttpError('INFER_REQUEST_INVALID', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Splits a binary BYTES tensor into its length-prefixed elements. */
export function decodeBytesTensor(data: Buffer, name: string): Buffer[] {
  const elements: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (offset + 4 > data.length) throw invalid(`input ${name}: binary BYTES data is cut inside an element's 4-byte length`);
    const length = data.readUInt32LE(offset);
    offset += 4;
    if (offset + length > data.length)
      throw invalid(`input ${name}: a BYTES element says ${length} bytes but only ${data.length - offset} follow`);
    elements.push(data.subarray(offset, offset + length));
    offset += length;
  }
  return elements;
}

export function encodeBytesTensor(values: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const value of values) {
    const bytes = Buffer.from(value, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length, 0);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

function flatten(value: unknown): unknown[] {
  return Array.isArray(value) ? value.flatMap(flatten) : [value];
}

function decodeJsonBytes(data: unknown, name: string): Buffer[] {
  return flatten(data).map((element) => {
    if (typeof element !== 'string') throw invalid(`input ${name}: BYTES data in JSON must be strings (the image as base64)`);
    const compact = element.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact))
      throw invalid(`input ${name}: the JSON string is not base64 (send the encoded image as base64, or use binary data)`);
    return Buffer.from(compact, 'base64');
  });
}

function parseShape(value: unknown, name: string): number[] {
  if (!Array.isArray(value) || !value.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    throw invalid(`input ${name}: shape must be an array of non-negative integers`);
  }
  return value as number[];
}

/** Parses a request body: JSON, or JSON header + binary tensors when `headerLength` is given. */
export function parseInferRequest(body: Buffer, headerLength: number | undefined): InferRequest {
  if (headerLength !== undefined && headerLength > body.length) {
    throw invalid(`Inference-Header-Content-Length is ${headerLength} but the body has ${body.length} bytes`);
  }
  const jsonEnd = headerLength ?? body.length;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'));
  } catch {
    throw invalid('the inference request header is not valid JSON');
  }
  if (!isRecord(parsed)) throw invalid('the inference request must be a JSON object');
  if (!Array.isArray(parsed.inputs)) throw invalid("the inference request has no 'inputs' array");
  let binaryOffset = jsonEnd;
  const inputs = parsed.inputs.map((raw: unknown, index: number): RequestTensor => {
    if (!isRecord(raw) || typeof raw.name !== 'string' || typeof raw.datatype !== 'string')
      throw invalid(`inputs[${index}] must have a name and a datatype`);
    const name = raw.name;
    const shape = parseShape(raw.shape, name);
    const size = isRecord(raw.parameters) ? raw.parameters.binary_data_size : undefined;
    if (size !== undefined) {
      if (!Number.isInteger(size) || (size as number) < 0 || binaryOffset + (size as number) > body.length) {
        throw invalid(`input ${name}: binary_data_size ${String(size)} runs past the end of the body`);
      }
      const data = body.subarray(binaryOffset, binaryOffset + (size as number));
      binaryOffset += size as number;
      return { name, datatype: raw.datatype, shape, elements: raw.datatype === 'BYTES' ? decodeBytesTensor(data, name) : [data] };
    }
    if (raw.data === undefined) throw invalid(`input ${name} has neither data nor parameters.binary_data_size`);
    if (raw.datatype !== 'BYTES') return { name, datatype: raw.datatype, shape, elements: [] };
    return { name, datatype: raw.datatype, shape, elements: decodeJsonBytes(raw.data, name) };
  });
  const parameters = isRecord(parsed.parameters) ? parsed.parameters : {};
  let outputs: RequestedOutput[] | undefined;
  if (parsed.outputs !== undefined) {
    if (!Array.isArray(parsed.outputs)) throw invalid("'outputs' must be an array");
    const defaultBinary = parameters.binary_data_output === true;
    outputs = parsed.outputs.map((raw: unknown, index: number): RequestedOutput => {
      if (!isRecord(raw) || typeof raw.name !== 'string') throw invalid(`outputs[${index}] must have a name`);
      const flag = isRecord(raw.parameters) ? raw.parameters.binary_data : undefined;
      return { name: raw.name, binary: typeof flag === 'boolean' ? flag : defaultBinary };
    });
  }
  return { id: typeof parsed.id === 'string' ? parsed.id : undefined, inputs, outputs, parameters };
}

function binaryOf(tensor: OutputTensor): Buffer {
  if (tensor.datatype === 'BYTES') return encodeBytesTensor(tensor.values as string[]);
  if (tensor.datatype === 'FP32') {
    const out = Buffer.alloc(tensor.values.length * 4);
    for (const [i, v] of (tensor.values as number[]).entries()) out.writeFloatLE(v, i * 4);
    return out;
  }
  const out = Buffer.alloc(tensor.values.length * 8);
  for (const [i, v] of (tensor.values as bigint[]).entries()) out.writeBigInt64LE(v, i * 8);
  return out;
}

/** The response body and its headers: plain JSON, or JSON + binary tensors when any is binary. */
export function encodeInferResponse(
  head: Record<string, unknown>,
  tensors: ReadonlyArray<{ tensor: OutputTensor; binary: boolean }>,
): { body: Buffer; headers: Record<string, string> } {
  const binaries: Buffer[] = [];
  const outputs = tensors.map(({ tensor, binary }) => {
    const meta = { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape };
    if (!binary) {
      const data = tensor.datatype === 'INT64' ? (tensor.values as bigint[]).map(Number) : tensor.values;
      return { ...meta, data };
    }
    const bytes = binaryOf(tensor);
    binaries.push(bytes);
    return { ...meta, parameters: { binary_data_size: bytes.length } };
  });
  const json = Buffer.from(JSON.stringify({ ...head, outputs }), 'utf8');
  if (binaries.length === 0) return { body: json, headers: { 'Content-Type': 'application/json' } };
  return {
    body: Buffer.concat([json, ...binaries]),
    headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(json.length) },
  };
}
