import { parseClasses, parseNativeParams, paramSource } from '../../src/server/request-params';

const CLASSES = ['__background__', 'circle', 'N/A', 'square', 'triangle'];
const from = (values: Record<string, string>) => (name: string) => values[name];

describe('request parameters', () => {
  it('parses score_threshold, max_detections, classes and render', () => {
    const params = parseNativeParams(
      from({ score_threshold: '0.25', max_detections: '5', classes: 'square, 1,square', render: 'jpeg' }),
      CLASSES,
      {
        scoreThreshold: undefined,
        maxDetections: undefined,
      },
    );
    expect(params).toEqual({ options: { scoreThreshold: 0.25, maxDetections: 5, classes: [3, 1] }, render: 'jpeg' });
  });

  it('falls back to the server defaults, and leaves the model defaults alone when those are unset', () => {
    expect(parseNativeParams(from({}), CLASSES, { scoreThreshold: 0.6, maxDetections: 7 }).options).toEqual({
      scoreThreshold: 0.6,
      maxDetections: 7,
    });
    expect(parseNativeParams(from({}), CLASSES, { scoreThreshold: undefined, maxDetections: undefined }).options).toEqual({});
  });

  it.each([
    [{ score_threshold: '1.01' }, "score_threshold must be a number in [0, 1], got '1.01'"],
    [{ score_threshold: 'abc' }, "score_threshold must be a number in [0, 1], got 'abc'"],
    [{ score_threshold: '' }, "score_threshold must be a number in [0, 1], got ''"],
    [{ max_detections: '0' }, "max_detections must be an integer in [1, 100000], got '0'"],
    [{ max_detections: '2.5' }, "max_detections must be an integer in [1, 100000], got '2.5'"],
    [{ classes: 'hexagon' }, "classes: unknown class 'hexagon'; this model's classes are circle (1), square (3), triangle (4)"],
    [{ classes: '0' }, "classes: unknown class '0'"],
    [{ classes: '2' }, "classes: unknown class '2'"],
    [{ classes: 'N/A' }, "classes: unknown class 'N/A'"],
    [{ classes: ' , ' }, 'classes must be a comma-separated list of class labels or ids'],
    [{ render: 'gif' }, "render must be one of 1, 0, png, jpeg, got 'gif'"],
  ])('refuses %j with a 400 naming the parameter', (values, message) => {
    const parse = () => parseNativeParams(from(values), CLASSES, { scoreThreshold: undefined, maxDetections: undefined });
    expect(parse).toThrow(message);
    try {
      parse();
    } catch (err) {
      expect(err).toMatchObject({ code: 'INVALID_PARAMETER', status: 400 });
    }
  });

  it('reads the query first, then multipart fields, and refuses a repeated query parameter', () => {
    const source = paramSource(
      { score_threshold: '0.1' },
      new Map([
        ['score_threshold', '0.9'],
        ['classes', 'circle'],
      ]),
    );
    expect(source('score_threshold')).toBe('0.1');
    expect(source('classes')).toBe('circle');
    expect(source('missing')).toBeUndefined();
    expect(() => paramSource({ classes: ['a', 'b'] }, new Map())('classes')).toThrow('classes is given more than once');
  });

  it('lists at most 20 classes in the error for big label sets', () => {
    const many = ['__background__', ...Array.from({ length: 30 }, (_, i) => `c${i}`)];
    expect(() => parseClasses(from({ classes: 'nope' }), 'classes', many)).toThrow('… 10 more (GET /v1/models)');
  });
});
