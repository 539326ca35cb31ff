import { ConcurrencyLimiter, type LimiterState } from '../../src/server/limiter';
import { HttpError } from '../../src/server/errors';

/** A task that runs until the test releases it. */
function gate(): { task: () => Promise<string>; release: (value: string) => void; started: () => boolean } {
  let release: (value: string) => void = () => undefined;
  let started = false;
  const done = new Promise<string>((resolve) => {
    release = resolve;
  });
  return {
    task: () => {
      started = true;
      return done;
    },
    release: (value) => release(value),
    started: () => started,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ConcurrencyLimiter', () => {
  it('runs at most `concurrency` tasks at once and starts queued ones in FIFO order', async () => {
    const states: LimiterState[] = [];
    const limiter = new ConcurrencyLimiter({ concurrency: 2, queueSize: 2, onChange: (s) => states.push(s) });
    const gates = [gate(), gate(), gate(), gate()];
    const results = gates.map((g) => limiter.run(g.task));
    await tick();
    expect(gates.map((g) => g.started())).toEqual([true, true, false, false]);
    expect(limiter.state).toEqual({ running: 2, queued: 2 });
    gates[1]!.release('b');
    await tick();
    expect(gates.map((g) => g.started())).toEqual([true, true, true, false]);
    gates[0]!.release('a');
    await tick();
    expect(gates[3]!.started()).toBe(true);
    gates[2]!.release('c');
    gates[3]!.release('d');
    await expect(Promise.all(results)).resolves.toEqual(['a', 'b', 'c', 'd']);
    expect(limiter.state).toEqual({ running: 0, queued: 0 });
    expect(states[states.length - 1]).toEqual({ running: 0, queued: 0 });
    expect(Math.max(...states.map((s) => s.running))).toBe(2);
  });

  it('refuses with QUEUE_FULL (503, Retry-After) when every slot and queue place is taken', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1, queueSize: 1, retryAfterSeconds: () => 3 });
    const running = gate();
    const first = limiter.run(running.task);
    const second = limiter.run(() => Promise.resolve('queued'));
    const third = limiter.run(() => Promise.resolve('never'));
    await expect(third).rejects.toMatchObject({ code: 'QUEUE_FULL', status: 503, headers: { 'Retry-After': '3' } });
    running.release('first');
    await expect(first).resolves.toBe('first');
    await expect(second).resolves.toBe('queued');
  });

  it('drops a queued task whose signal aborts, without running it', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1, queueSize: 4 });
    const running = gate();
    const first = limiter.run(running.task);
    const controller = new AbortController();
    let ran = false;
    const queued = limiter.run(async () => {
      ran = true;
      return 'ran';
    }, controller.signal);
    await tick();
    expect(limiter.state).toEqual({ running: 1, queued: 1 });
    const reason = new HttpError('CLIENT_CLOSED');
    controller.abort(reason);
    await expect(queued).rejects.toBe(reason);
    expect(limiter.state).toEqual({ running: 1, queued: 0 });
    running.release('done');
    await first;
    await tick();
    expect(ran).toBe(false);
    expect(limiter.state).toEqual({ running: 0, queued: 0 });
  });

  it('refuses an already aborted signal at once', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1, queueSize: 1 });
    const controller = new AbortController();
    controller.abort(new HttpError('DEADLINE_EXCEEDED'));
    await expect(limiter.run(() => Promise.resolve(1), controller.signal)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(limiter.state).toEqual({ running: 0, queued: 0 });
  });

  it('frees the slot when a task throws', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1, queueSize: 0 });
    await expect(limiter.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limiter.run(() => Promise.resolve('next'))).resolves.toBe('next');
  });

  it('whenIdle resolves once nothing runs or waits', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1, queueSize: 1 });
    const running = gate();
    void limiter.run(running.task);
    let idle = false;
    const whenIdle = limiter.whenIdle().then(() => {
      idle = true;
    });
    await tick();
    expect(idle).toBe(false);
    running.release('x');
    await whenIdle;
    expect(idle).toBe(true);
  });

  it('rejects nonsense limits', () => {
    expect(() => new ConcurrencyLimiter({ concurrency: 0, queueSize: 1 })).toThrow(RangeError);
    expect(() => new ConcurrencyLimiter({ concurrency: 1, queueSize: -1 })).toThrow(RangeError);
  });
});
