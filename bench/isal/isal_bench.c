/*
 * Raw ISA-L erasure coding, timed for bench/codec.mjs. Built at bench time against the
 * system's libisal (Debian: libisal-dev): gcc -O2 isal_bench.c -lisal.
 *
 * One request per line on stdin:  <path> <matrix> <k> <m> <segment> <len> <op> <seconds> <clock>
 *   path:   sse (ec_encode_data_sse, the 128-bit pshufb code, forced), best (ec_encode_data,
 *           ISA-L's own dispatch), avx2, avx, base
 *   matrix: vand (gf_gen_rs_matrix, as isa_l_rs_vand) or cauchy (gf_gen_cauchy1_matrix)
 *   op:     encode; decode or rebuildm (the first m data shards lost, rebuilt from the
 *           rest); rebuild1 (shard 0 lost). Rebuilds invert the survivors' submatrix and
 *           expand its tables on every call, as liberasurecode does.
 *   clock:  cpu (process CPU time) or wall
 * Reply: "<GB/s of segment bytes> <iterations>", or "error <why>".
 */
#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*encode_fn)(int, int, int, unsigned char *, unsigned char **, unsigned char **);

static double now(int cpu) {
  struct timespec ts;
  clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static encode_fn pick(const char *path) {
  if (!strcmp(path, "sse")) return ec_encode_data_sse;
  if (!strcmp(path, "avx")) return ec_encode_data_avx;
  if (!strcmp(path, "avx2")) return ec_encode_data_avx2;
  if (!strcmp(path, "best")) return ec_encode_data;
  if (!strcmp(path, "base")) return (encode_fn)ec_encode_data_base;
  return NULL;
}

struct ctx {
  int k, m, len, op;
  encode_fn enc;
  unsigned char *gen, *tables, *buf;
  unsigned char *shards[256], *out[256];
  int lost[256], nlost;
};

/* Rebuild tables for the lost shards from the first k survivors, then the region work. */
static int rebuild(struct ctx *c) {
  int k = c->k, n = c->k + c->m;
  unsigned char sub[256 * 256], inv[256 * 256], rows[256 * 256], *src[256];
  int avail[256], na = 0;
  for (int i = 0; i < n && na < k; i++) {
    int gone = 0;
    for (int j = 0; j < c->nlost; j++) gone |= c->lost[j] == i;
    if (!gone) avail[na++] = i;
  }
  for (int r = 0; r < k; r++) memcpy(sub + r * k, c->gen + avail[r] * k, k);
  if (gf_invert_matrix(sub, inv, k) < 0) return -1;
  for (int r = 0; r < c->nlost; r++) {
    int idx = c->lost[r];
    if (idx < k) {
      memcpy(rows + r * k, inv + idx * k, k);
    } else {
      for (int j = 0; j < k; j++) {
        unsigned char s = 0;
        for (int i = 0; i < k; i++) s ^= gf_mul(c->gen[idx * k + i], inv[i * k + j]);
        rows[r * k + j] = s;
      }
    }
  }
  for (int r = 0; r < k; r++) src[r] = c->shards[avail[r]];
  ec_init_tables(k, c->nlost, rows, c->tables);
  c->enc(c->len, k, c->nlost, c->tables, src, c->out);
  return 0;
}

static int once(struct ctx *c) {
  if (c->op == 0) {
    c->enc(c->len, c->k, c->m, c->tables, c->shards, c->shards + c->k);
    return 0;
  }
  return rebuild(c);
}

int main(void) {
  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    char path[32], matrix[32], op[32], clock[16];
    int k, m, segment, len;
    double seconds;
    if (sscanf(line, "%31s %31s %d %d %d %d %31s %lf %15s", path, matrix, &k, &m, &segment, &len, op, &seconds, clock) != 9) {
      printf("error bad request\n");
      fflush(stdout);
      continue;
    }
    struct ctx c = {0};
    c.k = k;
    c.m = m;
    c.len = len;
    c.enc = pick(path);
    c.op = !strcmp(op, "encode") ? 0 : 1;
    if (!c.enc || k < 1 || m < 1 || k + m > 255 || len < 64) {
      printf("error unsupported request\n");
      fflush(stdout);
      continue;
    }
    int n = k + m;
    c.gen = malloc(n * k);
    c.tables = malloc(32 * k * n);
    if (!strcmp(matrix, "cauchy")) gf_gen_cauchy1_matrix(c.gen, n, k);
    else gf_gen_rs_matrix(c.gen, n, k);
    ec_init_tables(k, m, c.gen + k * k, c.tables);
    if (posix_memalign((void **)&c.buf, 64, (size_t)(n + m) * len)) return 1;
    for (size_t i = 0; i < (size_t)k * len; i++) c.buf[i] = (unsigned char)(rand() >> 7);
    for (int i = 0; i < n; i++) c.shards[i] = c.buf + (size_t)i * len;
    c.enc(len, k, m, c.tables, c.shards, c.shards + k);
    if (!strcmp(op, "rebuild1")) {
      c.nlost = 1;
      c.lost[0] = 0;
    } else {
      c.nlost = m;
      for (int i = 0; i < m; i++) c.lost[i] = i;
    }
    for (int i = 0; i < c.nlost; i++) c.out[i] = c.buf + (size_t)(n + i) * len;
    if (c.op && (rebuild(&c) || memcmp(c.out[0], c.shards[c.lost[0]], len))) {
      printf("error rebuild does not give the lost shard back\n");
      fflush(stdout);
      continue;
    }
    int cpu = !strcmp(clock, "cpu");
    once(&c);
    long iters = 0;
    double start = now(cpu), t;
    do {
      once(&c);
      iters++;
      t = now(cpu);
    } while (t - start < seconds);
    printf("%.4f %ld\n", (double)segment * iters / (t - start) / 1e9, iters);
    fflush(stdout);
    free(c.gen);
    free(c.tables);
    free(c.buf);
  }
  return 0;
}
