// This CPU's peak fp32 rate, for the benchmarks' GFLOP/s (tools/bench/bench-pipeline.mjs, readme-rows.mjs).
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * This CPU's peak fp32 rate, from /proc/cpuinfo: cores x clock x FLOP per cycle per core, where FLOP per
 * cycle = 2 (a fused multiply-add is two) x fp32 lanes of the widest vector unit its flags name
 * (avx512f: 16, avx/avx2: 8, else 4) x FMA pipes per core (2: Zen 4/5, Ice Lake-SP and later Xeons; an
 * assumption, flags cannot say it). The clock is /proc/cpuinfo's "cpu MHz" (in a VM the nominal clock;
 * boost can be higher, so the peak can be too).
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
  return { model, cores, mhz, lanes, perCycle, gflops: (cores * mhz * perCycle) / 1000 };
}
