// Measured peak fp32 FLOP/s of this CPU, for the benchmarks' "how close to the hardware" figure
// (tools/bench/cpu-peak.mjs compiles and runs it). /proc/cpuinfo's clock is the nominal one in a VM,
// and cores boost past it, so a computed peak can be far off; this measures instead:
//   - the clock: a chain of dependent integer adds retires one add per cycle;
//   - the FMA rate: 10 independent vector FMA chains per thread (enough to cover latency x pipes),
//     AVX-512 when the CPU has it, else AVX2, one thread per core given, all at once.
// Prints one JSON line: {"isa", "threads", "ghz", "gflops_per_thread": [...], "gflops"}.
//   cc -O2 -pthread -o fma-peak tools/bench/fma-peak.c && ./fma-peak THREADS
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double clock_ghz(void) {
  const long n = 500000000L;
  long x = 0;
  double t0 = now();
  for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
  return 4.0 * n / (now() - t0) / 1e9;
}

static volatile float seed[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const long ITERATIONS = 200000000L;

#define CHAINS(T, SET, FMA, LANES)                                                                  \
  T b = SET(0.999999f), c = SET(1e-7f);                                                             \
  T a0 = SET(seed[0]), a1 = SET(seed[1]), a2 = SET(seed[2]), a3 = SET(seed[3]), a4 = SET(seed[4]);  \
  T a5 = SET(seed[5]), a6 = SET(seed[6]), a7 = SET(seed[7]), a8 = SET(seed[8]), a9 = SET(seed[9]);  \
  double t0 = now();                                                                                \
  for (long i = 0; i < ITERATIONS; i++) {                                                           \
    a0 = FMA(a0, b, c); a1 = FMA(a1, b, c); a2 = FMA(a2, b, c); a3 = FMA(a3, b, c);                 \
    a4 = FMA(a4, b, c); a5 = FMA(a5, b, c); a6 = FMA(a6, b, c); a7 = FMA(a7, b, c);                 \
    a8 = FMA(a8, b, c); a9 = FMA(a9, b, c);                                                         \
  }                                                                                                 \
  double seconds = now() - t0;                                                                      \
  float sink[LANES];                                                                                \
  T s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9;                                            \
  __builtin_memcpy(sink, &s, sizeof sink);                                                          \
  if (sink[0] == 12345.0f) puts("");                                                                \
  return 10.0 * LANES * 2 * ITERATIONS / seconds / 1e9;

__attribute__((target("avx512f"))) static double fma512(void) { CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16) }
__attribute__((target("avx2,fma"))) static double fma256(void) { CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8) }

static int use512;
static void *run(void *out) {
  *(double *)out = use512 ? fma512() : fma256();
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 256) return 2;
  __builtin_cpu_init();
  use512 = __builtin_cpu_supports("avx512f");
  if (!use512 && !__builtin_cpu_supports("fma")) return 3;
  double ghz = clock_ghz();
  pthread_t ids[256];
  double rates[256];
  for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, run, &rates[t]);
  double total = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(ids[t], NULL);
    total += rates[t];
  }
  printf("{\"isa\": \"%s\", \"threads\": %d, \"ghz\": %.3f, \"gflops_per_thread\": [", use512 ? "avx512" : "avx2", threads, ghz);
  for (int t = 0; t < threads; t++) printf("%s%.1f", t ? ", " : "", rates[t]);
  printf("], \"gflops\": %.1f}\n", total);
  return 0;
}
