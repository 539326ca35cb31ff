// This CPU's peak fp32 rate, for the benchmarks' GFLOP/s (tools/bench/bench-pipeline.mjs, readme-rows.mjs).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * This CPU's peak fp32 rate. Measured when a C compiler is there (tools/bench/fma-peak.c: the clock from a
 * dependent add chain, the rate from independent AVX-512 or AVX2 FMA chains on every core at once), because
 * /proc/cpuinfo's "cpu MHz" is the nominal clock in a VM and cores boost past it (seen here: 2596 MHz
 * nominal, 4.2 GHz measured, so the computed peak was 332 GFLOP/s and the measured one 538).
 * Otherwise computed from /proc/cpuinfo: cores x clock x FLOP per cycle per core, where FLOP per cycle =
 * 2 (a fused multiply-add is two) x fp32 lanes of the widest vector unit its flags name (avx512f: 16,
 * avx/avx2: 8, else 4) x FMA pipes per core (2: Zen 4/5, Ice Lake-SP and later Xeons; an assumption).
 * `source` says which; `computed_gflops` is always the cpuinfo figure.
 */
export function cpuPeak() {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const flags = new Set((info.match(/^flags\s*:\s*(.*)$/m)?.[1] ?? '').split(/\s+/));
  const mhz = Number(info.match(/^cpu MHz\s*:\s*([\d.]+)/m)?.[1]);
  const model = info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown CPU';
  if (!(mhz > 0)) return null;
  const lanes = flags.has('avx512f') ? 16 : flags.has('avx') ? 8 : 4;
  const fma = flags.has('fma') || flags.has('avx512f') ? 2 : 1;
  const pipes = 2;
  const cores = availableParallelism();
  const perCycle = fma * lanes * pipes;
  const computed = (cores * mhz * perCycle) / 1000;
  const measured = measurePeak(cores);
  return {
    model,
    cores,
    mhz,
    lanes,
    perCycle,
    computed_gflops: computed,
    gflops: measured?.gflops ?? computed,
    measured_ghz: measured?.ghz ?? null,
    source:
      measured === null ? 'computed from /proc/cpuinfo (nominal clock)' : `measured (${measured.isa} FMA loop, tools/bench/fma-peak.c)`,
  };
}

/** Compiles and runs tools/bench/fma-peak.c on `threads` threads; null when there is no compiler or it fails. */
function measurePeak(threads) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cpwc-fma-peak-'));
  try {
    const binary = path.join(dir, 'fma-peak');
    const source = fileURLToPath(new URL('./fma-peak.c', import.meta.url));
    const compiled = spawnSync(process.env.CC ?? 'cc', ['-O2', '-pthread', '-o', binary, source], { stdio: 'ignore' });
    if (compiled.status !== 0) return null;
    const run = spawnSync(binary, [String(threads)], { encoding: 'utf8' });
    if (run.status !== 0) return null;
    return JSON.parse(run.stdout);
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
