import {
  checkNumber,
  commaList,
  describeActual,
  describeJson,
  describeNumberRule,
  invalidParameterMessage,
  is,
  MAX_SHOWN_LENGTH,
  parseNumberText,
} from '../../src/common/validate';

describe('is: the typed predicates', () => {
  it('number accepts finite numbers only', () => {
    expect([0, -1.5, 1e300].map(is.number)).toEqual([true, true, true]);
    expect([Number.NaN, Number.POSITIVE_INFINITY, '1', null, undefined].map(is.number)).toEqual([false, false, false, false, false]);
  });

  it('integer, inRange, defined, string, bool, plainObject, inArray', () => {
    expect([3, 3.5, '3'].map(is.integer)).toEqual([true, false, false]);
    expect([is.inRange(1, 1, 2), is.inRange(2, 1, 2), is.inRange(2.01, 1, 2), is.inRange(-5, undefined, 0)]).toEqual([
      true,
      true,
      false,
      true,
    ]);
    expect([0, '', null, undefined].map((v) => is.defined(v))).toEqual([true, true, false, false]);
    expect([is.string('a'), is.string(1), is.bool(false), is.bool(0)]).toEqual([true, false, true, false]);
    expect([is.plainObject({}), is.plainObject([]), is.plainObject(null)]).toEqual([true, false, false]);
    expect([is.inArray('cpu', ['cpu', 'cuda']), is.inArray('gpu', ['cpu', 'cuda'])]).toEqual([true, false]);
  });
});

describe('invalidParameterMessage: "NAME must be EXPECTED, got ACTUAL"', () => {
  it('quotes strings and shows numbers, booleans, null and undefined as they are', () => {
    expect(invalidParameterMessage('max_detections', 'an integer in [1, 100000]', '2.5')).toBe(
      "max_detections must be an integer in [1, 100000], got '2.5'",
    );
    expect(invalidParameterMessage('scoreThreshold', 'a number in [0, 1]', 1.5)).toBe('scoreThreshold must be a number in [0, 1], got 1.5');
    expect([true, null, undefined, Number.NaN].map(describeActual)).toEqual(['true', 'null', 'undefined', 'NaN']);
  });

  it('describeJson shows a JSON field as written in the file, and a missing one as nothing', () => {
    expect(invalidParameterMessage('transform.min_size', 'an integer > 0', '800', describeJson)).toBe(
      'transform.min_size must be an integer > 0, got "800"',
    );
    expect([describeJson(undefined), describeJson([1, 'a']), describeJson({ k: null })]).toEqual(['nothing', '[1,"a"]', '{"k":null}']);
  });

  it('names arrays and objects by kind, and cuts long strings', () => {
    expect(describeActual([1, 2])).toBe('an array of 2');
    expect(describeActual({ a: 1 })).toBe('an object');
    const long = 'x'.repeat(MAX_SHOWN_LENGTH + 10);
    expect(describeActual(long)).toBe(`'${'x'.repeat(MAX_SHOWN_LENGTH)}…'`);
  });
});

describe('number rules', () => {
  it('describes each kind of rule', () => {
    expect(describeNumberRule({ integer: true, min: 1, max: 10 })).toBe('an integer in [1, 10]');
    expect(describeNumberRule({ min: 0, max: 1 })).toBe('a number in [0, 1]');
    expect(describeNumberRule({ integer: true, min: 1 })).toBe('an integer >= 1');
    expect(describeNumberRule({ max: 0 })).toBe('a number <= 0');
    expect(describeNumberRule({})).toBe('a number');
    expect(describeNumberRule({ integer: true, greaterThan: 0 })).toBe('an integer > 0');
    expect(describeNumberRule({ greaterThan: 0, max: 1 })).toBe('a number > 0 and <= 1');
    expect(checkNumber('w', 0, { greaterThan: 0 })).toBe('w must be a number > 0, got 0');
    expect(checkNumber('w', 1e-9, { greaterThan: 0 })).toBeUndefined();
  });

  it('checkNumber passes values inside the rule, bounds included, and names the bad one', () => {
    const rule = { integer: true, min: 1, max: 100 };
    expect([1, 50, 100].map((v) => checkNumber('n', v, rule))).toEqual([undefined, undefined, undefined]);
    expect(checkNumber('n', 0, rule)).toBe('n must be an integer in [1, 100], got 0');
    expect(checkNumber('n', 2.5, rule)).toBe('n must be an integer in [1, 100], got 2.5');
    expect(checkNumber('n', '5', rule)).toBe("n must be an integer in [1, 100], got '5'");
    expect(checkNumber('x', Number.NaN, {})).toBe('x must be a number, got NaN');
  });

  it('parseNumberText trims, refuses empty and non-numeric text, and shows the text as given', () => {
    expect(parseNumberText('--port', ' 8080 ', { integer: true, min: 0, max: 65535 })).toEqual({ ok: true, value: 8080 });
    expect(parseNumberText('--t', '0.25', { min: 0, max: 1 })).toEqual({ ok: true, value: 0.25 });
    expect(parseNumberText('--t', '', { min: 0, max: 1 })).toEqual({ ok: false, message: "--t must be a number in [0, 1], got ''" });
    expect(parseNumberText('--t', 'high', { min: 0, max: 1 })).toEqual({
      ok: false,
      message: "--t must be a number in [0, 1], got 'high'",
    });
    expect(parseNumberText('--n', '1e6', { integer: true, min: 1, max: 10 })).toEqual({
      ok: false,
      message: "--n must be an integer in [1, 10], got '1e6'",
    });
  });
});

describe('commaList', () => {
  it('splits on commas, trims each entry and drops the empty ones', () => {
    expect(commaList(' circle, 2 ,,square,')).toEqual(['circle', '2', 'square']);
    expect(commaList('a b,c')).toEqual(['a b', 'c']);
  });

  it('gives no entries for empty, blank or commas-only text', () => {
    expect([commaList(''), commaList('   '), commaList(' , ,')]).toEqual([[], [], []]);
  });
});
