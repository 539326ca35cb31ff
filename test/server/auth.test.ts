import { ApiKeys, bearerToken } from '../../src/server/auth';

describe('API keys', () => {
  it('accepts exactly the configured keys', () => {
    const keys = new ApiKeys(['first-key-0001', 'second-key-0002']);
    expect(keys.open).toBe(false);
    expect(keys.accepts('first-key-0001')).toBe(true);
    expect(keys.accepts('second-key-0002')).toBe(true);
    expect(keys.accepts('first-key-000')).toBe(false);
    expect(keys.accepts('first-key-00011')).toBe(false);
    expect(keys.accepts('')).toBe(false);
    expect(keys.accepts(undefined)).toBe(false);
  });

  it('is open with no keys, yet accepts no key as valid', () => {
    const keys = new ApiKeys([]);
    expect(keys.open).toBe(true);
    expect(keys.accepts('anything')).toBe(false);
  });

  it('reads Bearer tokens, case-insensitively, and nothing else', () => {
    expect(bearerToken({ authorization: 'Bearer abc.def' })).toBe('abc.def');
    expect(bearerToken({ authorization: 'bearer   abc ' })).toBe('abc');
    expect(bearerToken({ authorization: 'Basic dXNlcjpwYXNz' })).toBeUndefined();
    expect(bearerToken({ authorization: 'Bearer a b' })).toBeUndefined();
    expect(bearerToken({})).toBeUndefined();
  });
});
