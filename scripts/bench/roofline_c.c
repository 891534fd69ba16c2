/* scripts/bench/roofline_c.c -- this machine's own limits, the bounds the model
 * benchmarks are reported against (built and run by scripts/bench/roofline.lua).
 *
 *   read   STREAM-like read bandwidth: the sum of a float buffer far larger than
 *          the caches (READ_MB), on 1 and 2 threads (each thread sums its half,
 *          started together; a pass lasts until the slower ends). GB/s = 1e9 B/s.
 *   sgemm  one bli_sgemm per call, C (M x N) = A (M x K) B (K x N), at GPT-2
 *          124M's shapes for a batch of 4 x 64 tokens (M = 256): the QKV, attention
 *          projection, MLP up and down products and the LM head; on 1 and 2
 *          threads (BLIS's own, through its runtime object), and "model": the
 *          aggregate rate over the five shapes (their FLOP over their times).
 * Every figure is the best of at least REPS samples (least disturbed by other load),
 * in wall time and, with a _cpu suffix, in the CPU time of the threads doing the
 * work: on cores shared with other processes the wall figures fall with the
 * load, the CPU-time ones (the rate while running) much less; the bounds use
 * the higher (roofline.lua).
 * One JSON line per measurement. Not the library: no rlaif code is timed here;
 * the kernels are the best this machine has (BLIS, as configured by
 * BLIS_ARCH_TYPE, which roofline.lua sets to the configuration rlaif uses). */
#define _GNU_SOURCE
#include <blis.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_MB 512
#define REPS 7

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {   /* this thread's CPU time */
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- read bandwidth ---- */

typedef struct {
    const float *p;
    size_t n;
    float sum;
    double cpu;
    pthread_barrier_t *bar;
} rd_arg;

/* eight independent sums so the loop is bound by loads, not by add latency
 * (AVX-512 loads where the compiler targets them: as wide as the GEMV's) */
static float sum_floats(const float *p, size_t n) {
    size_t i = 0;
#ifdef __AVX512F__
    __m512 v[8];
    for (int j = 0; j < 8; j++) v[j] = _mm512_setzero_ps();
    for (; i + 128 <= n; i += 128)
        for (int j = 0; j < 8; j++) v[j] = _mm512_add_ps(v[j], _mm512_loadu_ps(p + i + 16 * j));
    float t = 0;
    for (; i < n; i++) t += p[i];
    for (int j = 0; j < 8; j++) t += _mm512_reduce_add_ps(v[j]);
    return t;
#else
    float s[8][16] = {{0}};
    for (; i + 128 <= n; i += 128)
        for (int j = 0; j < 8; j++)
            for (int k = 0; k < 16; k++) s[j][k] += p[i + 16 * j + k];
    float t = 0;
    for (; i < n; i++) t += p[i];
    for (int j = 0; j < 8; j++)
        for (int k = 0; k < 16; k++) t += s[j][k];
    return t;
#endif
}

static void *rd_main(void *v) {
    rd_arg *a = v;
    pthread_barrier_wait(a->bar);
    double c0 = cpu_now();
    a->sum = sum_floats(a->p, a->n);
    a->cpu = cpu_now() - c0;
    return NULL;
}

static double read_gbs(const float *buf, size_t n, int nt, double *cpu_gbs) {
    double best = 1e30, best_cpu = 1e30;
    volatile float sink = 0;
    for (int r = 0; r < REPS; r++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
        pthread_t th[2];
        rd_arg a[2];
        size_t per = n / nt / 128 * 128;
        for (int t = 0; t < nt; t++) {
            a[t] = (rd_arg){buf + t * per, t == nt - 1 ? n - t * per : per, 0, 0, &bar};
            pthread_create(&th[t], NULL, rd_main, &a[t]);
        }
        double t0 = now();
        pthread_barrier_wait(&bar);
        for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
        double dt = now() - t0;
        double cpu = 0;
        for (int t = 0; t < nt; t++) sink += a[t].sum, cpu = a[t].cpu > cpu ? a[t].cpu : cpu;
        pthread_barrier_destroy(&bar);
        if (dt < best) best = dt;
        if (cpu < best_cpu) best_cpu = cpu;
    }
    (void)sink;
    *cpu_gbs = (double)n * sizeof(float) / best_cpu / 1e9;
    return (double)n * sizeof(float) / best / 1e9;
}

/* ---- sgemm ---- */

/* best wall seconds; *cpu_s = best CPU seconds of the calling thread (one thread only) */
static double sgemm_s(int M, int K, int N, int nt, const float *A, const float *B, float *C, double *cpu_s) {
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(nt, &rntm);
    float one = 1.0f, zero = 0.0f;
    double best = 1e30, best_cpu = 1e30, t_end = now() + 0.6;
    /* C (M x N) = A (M x K) B (K x N), row-major; a warm-up call, then at least
     * REPS samples and as many more as fit in 0.6 s (a quieter moment) */
    for (int r = 0; r <= REPS || now() < t_end; r++) {
        double t0 = now(), c0 = cpu_now();
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &one, (float *)A, K, 1, (float *)B, N, 1, &zero,
                     C, N, 1, NULL, &rntm);
        double dt = now() - t0, dc = cpu_now() - c0;
        if (r > 0 && dt < best) best = dt;
        if (r > 0 && dc < best_cpu) best_cpu = dc;
    }
    *cpu_s = best_cpu;
    return best;
}

int main(void) {
    size_t n = (size_t)READ_MB * 1024 * 1024 / sizeof(float);
    float *buf = malloc(n * sizeof(float));
    if (!buf) {
        printf("{\"bench\":\"roofline\",\"skipped\":\"cannot allocate %d MB\"}\n", READ_MB);
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 1023) * 1e-3f;
    for (int nt = 1; nt <= 2; nt++) {
        double cpu, wall = read_gbs(buf, n, nt, &cpu);
        printf("{\"bench\":\"roofline\",\"what\":\"read\",\"threads\":%d,\"mb\":%d,\"gb_per_s\":%.4g,"
               "\"gb_per_s_cpu\":%.4g}\n", nt, READ_MB, wall, cpu);
    }
    free(buf);
    fflush(stdout);

    static const int shapes[][3] = {{256, 768, 2304}, {256, 768, 768}, {256, 768, 3072}, {256, 3072, 768},
                                    {256, 768, 50257}};
    int ns = (int)(sizeof shapes / sizeof shapes[0]);
    size_t amax = 256 * 3072, bmax = (size_t)768 * 50257, cmax = (size_t)256 * 50257;
    float *A = malloc(amax * sizeof(float)), *B = malloc(bmax * sizeof(float)), *C = malloc(cmax * sizeof(float));
    if (!A || !B || !C) return 1;
    for (size_t i = 0; i < amax; i++) A[i] = (float)(i % 97) * 1e-2f;
    for (size_t i = 0; i < bmax; i++) B[i] = (float)(i % 89) * 1e-2f;
    for (int nt = 1; nt <= 2; nt++) {
        double flop_all = 0, sec_all = 0, cpu_all = 0;
        for (int s = 0; s < ns; s++) {
            int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
            double cpu, sec = sgemm_s(M, K, N, nt, A, B, C, &cpu), flop = 2.0 * M * K * N;
            flop_all += flop, sec_all += sec, cpu_all += cpu;
            printf("{\"bench\":\"roofline\",\"what\":\"sgemm\",\"threads\":%d,\"m\":%d,\"k\":%d,\"n\":%d,"
                   "\"gflops\":%.4g", nt, M, K, N, flop / sec / 1e9);
            if (nt == 1) printf(",\"gflops_cpu\":%.4g", flop / cpu / 1e9);
            printf("}\n");
        }
        printf("{\"bench\":\"roofline\",\"what\":\"sgemm\",\"threads\":%d,\"shape\":\"model\",\"gflops\":%.4g", nt,
               flop_all / sec_all / 1e9);
        if (nt == 1) printf(",\"gflops_cpu\":%.4g", flop_all / cpu_all / 1e9);
        printf("}\n");
        fflush(stdout);
    }
    free(A), free(B), free(C);
    return 0;
}
