/**
 * The multipart part count the body reader checks busboy's parts against: every delimiter of
 * RFC 2046 but the closing one, wherever the chunks of the stream split it.
 */
import { MultipartPartCounter, multipartBoundary } from '../../src/server/multipart-parts';
import { multipart } from '../helpers/server';

function countInChunks(body: Buffer, boundary: string, chunkSize: number): number {
  const counter = new MultipartPartCounter(boundary);
  for (let at = 0; at < body.length; at += chunkSize) counter.push(body.subarray(at, at + chunkSize));
  return counter.parts;
}

describe('MultipartPartCounter', () => {
  it('counts the parts of a form however the stream is split, none for an empty form', () => {
    const form = multipart([
      { name: 'api_key', value: 'k' },
      { name: 'image', value: Buffer.from('\r\n--not-the-boundary\r\n'), filename: 'x.jpg' },
      { name: 'min_confidence', value: '0.5' },
    ]);
    const boundary = multipartBoundary(form.contentType) as string;
    for (const size of [1, 2, 3, 7, 16, form.body.length]) expect([size, countInChunks(form.body, boundary, size)]).toEqual([size, 3]);
    expect(countInChunks(Buffer.from('--B--\r\n'), 'B', 1)).toBe(0);
    expect(countInChunks(Buffer.from('--B\r\n--B--\r\n'), 'B', 1)).toBe(1);
    expect(countInChunks(Buffer.from('preamble\r\n--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--B--\r\n'), 'B', 4)).toBe(1);
  });

  it('reads the boundary parameter, quoted or not, in any case', () => {
    expect(multipartBoundary('multipart/form-data; boundary=abc')).toBe('abc');
    expect(multipartBoundary('multipart/form-data; charset=utf-8; BOUNDARY="a b\\"c"')).toBe('a b"c');
    expect(multipartBoundary('multipart/form-data')).toBeUndefined();
  });
});
