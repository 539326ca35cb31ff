/** ServerPool.connect checks its numeric options before asking any server. */
import { CocoEvalError } from '../../../src/eval/errors';
import { ServerPool } from '../../../src/eval/batch/server-pool';

describe('ServerPool options', () => {
  it.each([
    [{ concurrencyPerServer: 0 }, 'concurrencyPerServer must be an integer >= 1, got 0'],
    [{ concurrencyPerServer: 1.5 }, 'concurrencyPerServer must be an integer >= 1, got 1.5'],
    [{ timeoutMs: 0 }, 'timeoutMs must be a number > 0, got 0'],
    [{ maxAttempts: Number.NaN }, 'maxAttempts must be an integer >= 1, got NaN'],
    [{ maxBusyMs: -1 }, 'maxBusyMs must be a number >= 0, got -1'],
  ])('%j is INVALID_ARGUMENT: %s', async (options, message) => {
    // port 9 (discard) is never asked: the options fail first
    const error = await ServerPool.connect({ urls: ['http://127.0.0.1:9'], ...options }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CocoEvalError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message });
  });
});
