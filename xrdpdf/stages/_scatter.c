/*
 * The kernel of the fast integration (xrdpdf.stages._fastint): one pass over a
 * frame with pyFAI's CSR operator, stored by strips of pixels and groups of bins.
 *
 * The layout (built by xrdpdf.stages._fastop._tile).  Each pixel j adds
 * c_u * (raw - dark) to bin first(j) + u (u < W, W = 4 or 8).  The frame is cut into
 * strips of whole rows (at most 65536 pixels, so that a pixel's place in its strip
 * fits 16 bits); a strip is one block of work.  In a strip, the pixels whose first bin
 * is b go to lane b % 16 of the batch of bins [g, g + 16), g = 16 * (b / 16): batch
 * step s holds, for each of the 16 lanes, one pixel (off[s][lane], its place in the
 * strip) and its W coefficients (coef[s][u][lane]); a lane with fewer pixels than the
 * batch has steps is padded with coefficients 0.  So the 16 lanes of a step are 16
 * different bins: a step is one 16-wide gather of the frame and W multiply-adds into
 * per-lane sums kept in registers, and no two lanes ever add to the same sum.  At the
 * end of a batch, lane l's sum for coefficient u belongs to bin g + l + u; the W
 * shifted rows are added into one row of 24 bins and that row into the block's sums.
 * The rare coefficients beyond W (and every coefficient of the frame's last pixel,
 * which a 32-bit gather of a 16-bit frame would read past) are the overflow entries
 * (ov_pix, ov_bin, ov_coef), taken one by one.
 *
 * For a valid pixel the kernel adds c * (raw - dark) to the signal sum and
 * c^2 * max(raw, 1) to the variance sum (pyFAI's Cython CSR engine with
 * error_model="poisson"); for an invalid one it adds c * norm[j] to the removed-norm
 * sum and 1 to the removed-count of each bin with c != 0.  The per-lane sums are
 * float32 fused multiply-adds (one rounding per term) over at most FLUSH steps, then
 * added into float64 sums.  The dark is gathered like the frame, or, when the caller
 * gives dark_steps (the dark already in step order, made once per dark), read in order.
 *
 * Every calling thread takes the next free block (strip) from a shared counter (an
 * atomic add), so a thread slowed down by a busy machine takes fewer.  Each block adds
 * into its own sums (a window of bins); those are added into the result in block
 * order, while the other blocks run, by whichever thread holds a lock when the next
 * block in order is done (add_ready): the result does not depend on which thread took
 * which block, nor on the number of threads.  The
 * AVX-512 path and the portable C path do the same operations in the same order
 * (fmaf in C, one instruction where the CPU has FMA; no other contraction:
 * -ffp-contract=off), so they give bit-identical sums.  The GIL is released for the
 * whole pass.  The places in off are checked by the caller once per operator; the batch
 * and block tables and the overflow bins are checked here at every call (a few
 * thousand entries).
 *
 * Only the Python C API and the buffer protocol are used (no numpy headers), so the
 * extension builds with nothing but a C compiler and the Python headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_AVX512_PATH 1
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))
#else
#define HAVE_AVX512_PATH 0
#endif

/* next_block: a relaxed fetch-and-add.  swap, get, set: sequentially consistent. */
#if defined(_MSC_VER)
#include <windows.h>
static int64_t next_block(int64_t *counter)
{
    return InterlockedExchangeAdd64((volatile LONG64 *)counter, 1);
}
static int64_t swap(int64_t *p, int64_t v) { return InterlockedExchange64((volatile LONG64 *)p, v); }
static int64_t get(int64_t *p) { return InterlockedCompareExchange64((volatile LONG64 *)p, 0, 0); }
static void set(int64_t *p, int64_t v) { InterlockedExchange64((volatile LONG64 *)p, v); }
#define ALWAYS_INLINE __forceinline
#else
static int64_t next_block(int64_t *counter)
{
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
static int64_t swap(int64_t *p, int64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static int64_t get(int64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static void set(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif

/* K_STEPS: the dark as float32 in step order (dark_steps), read by contiguous loads */
enum { K_U16 = 0, K_I32 = 1, K_U32 = 2, K_F32 = 3, K_F64 = 4, K_NONE = 5, K_STEPS = 6 };

/* lanes of a batch, bins of the row a batch adds to its block's sums */
enum { LANES = 16, ROW = 24 };
/* steps summed in float32 before they go to the float64 sums (error bound: _fastint) */
enum { FLUSH = 8 };
/* Steps ahead (64 steps, ~22 KB of operator and dark) at which a step's lines are
 * prefetched.  The hardware prefetchers stop at each 4 KiB page (11 steps), so the
 * streams otherwise start over from a miss at every page; the software prefetch
 * keeps them in flight across pages.  Measured on a 2-core Zen 5 VM (2048^2 u16,
 * 3000 bins, variants alternating in one process): 4.1 -> 3.6 ms per frame on two
 * threads, 7.4 -> 5.8 ms on one; 48 to 96 steps ahead are alike, 8 gains half as
 * much.  On a 2-core Intel Xeon VM, 32 to 128 steps ahead are alike (3.5 to 3.7 ms,
 * two threads) and no prefetch takes 4.5 ms.  A prefetch changes no value. */
enum { AHEAD = 64 };

/* columns of the block table */
enum { B_P0, B_BATCH_LO, B_BATCH_HI, B_OV_LO, B_OV_HI, B_BIN_LO, B_NBIN, B_ACC, B_COLS };
/* columns of the batch table */
enum { T_BIN, T_NSTEP, T_STEP0, T_COLS };

typedef struct {
    const uint16_t *off;
    const float *coef;
    Py_ssize_t width;
    Py_ssize_t nstep;
    const int64_t *batches;
    Py_ssize_t nbatch;
    const int64_t *blocks;
    Py_ssize_t nblock;
    const int32_t *ov_pix;
    const int32_t *ov_bin;
    const float *ov_coef;
    const void *frame;
    Py_ssize_t npix;
    int frame_kind;
    const void *dark;
    int dark_kind;
    const float *dark_steps; /* NULL, or the dark at off[s][lane] of each step */
    const float *pixel_norm;
    int mask_negative;
    int check_dummy;
    float dummy;
    float delta_dummy;
    double *acc;
    int64_t *counter; /* next block; then, with out: next block to add, lock, done[k] */
    double *out;      /* NULL, or the (4, nout) sums the blocks are added into */
    Py_ssize_t nout;
} job_t;

#if defined(__GNUC__) || defined(__clang__)
/* Locality 3 (PREFETCHT0 on x86: into every cache level).  The hint matters on
 * Intel: in process, 2048^2 u16, 3000 bins, on 2-core Intel Xeon VMs (family 6
 * model 167), two sessions, ms per frame on two threads: PREFETCHNTA 9.2 to 10.1,
 * no prefetch 4.4 to 4.9, T0 3.3 to 3.6, T1 3.2 to 3.5; on one thread: NTA 19.4 to
 * 21.0, T0 6.4 to 9.2, T1 6.1 to 7.2.  The likely cause is that an NTA line skips
 * L2, so one evicted from L1 before its use is read from memory again.  T1 is not
 * used: on the Zen 5 VM it was slower than T0 (there NTA and T0 were alike). */
#define PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#else
#define PREFETCH(p) ((void)0)
#endif

/* The lines of step st + AHEAD: its 16 places, W rows of coefficients, dark row. */
static ALWAYS_INLINE void prefetch_step(const job_t *t, int64_t st, Py_ssize_t W, int dkind)
{
    if (st + AHEAD >= t->nstep)
        return;
    const char *c = (const char *)(t->coef + (st + AHEAD) * W * LANES);
    for (Py_ssize_t u = 0; u < W; u++)
        PREFETCH(c + 64 * u);
    PREFETCH(t->off + (st + AHEAD) * LANES);
    if (dkind == K_STEPS)
        PREFETCH(t->dark_steps + (st + AHEAD) * LANES);
}

/* The sums of one block: four rows (signal, variance, removed norm, removed count)
 * over the bins bin_lo .. bin_lo + nbin. */
typedef struct {
    double *sig, *var, *rnorm, *rcount;
    int64_t bin_lo;
} sums_t;

/* ------------------------------------------------------------------ one pixel (C) */

static Py_ssize_t item_size(int kind)
{
    return kind == K_U16 ? 2 : kind == K_F64 ? 8 : 4;
}

/* A pixel value as pyFAI's preprocessing sees it: a float32. */
static ALWAYS_INLINE float load_value(const void *base, int kind, Py_ssize_t j)
{
    switch (kind) {
    case K_U16:
        return (float)((const uint16_t *)base)[j];
    case K_I32:
        return (float)((const int32_t *)base)[j];
    case K_U32:
        return (float)((const uint32_t *)base)[j];
    case K_F32:
        return ((const float *)base)[j];
    default:
        return (float)((const double *)base)[j];
    }
}

static ALWAYS_INLINE int is_valid(const job_t *t, float x, int kind)
{
    if (kind >= K_F32 && !isfinite(x))
        return 0;
    if (t->mask_negative && x < 0.0f)
        return 0;
    if (t->check_dummy && fabsf(x - t->dummy) <= t->delta_dummy)
        return 0;
    return 1;
}

/* 1 and *y = raw - dark when a pixel (raw value x, dark d) counts in this frame, else 0 */
static ALWAYS_INLINE int pixel_signal(const job_t *t, float x, float d, float *y, int kind,
                                      int dkind)
{
    if (!is_valid(t, x, kind))
        return 0;
    *y = x;
    if (dkind != K_NONE) {
        if (!isfinite(d)) /* pyFAI masks a non-finite raw - dark */
            return 0;
        *y = x - d;
    }
    return 1;
}

/* An invalid pixel j: its coefficients c[u * stride] (bins b0 + u) leave the norm. */
static ALWAYS_INLINE void remove_pixel(const job_t *t, const sums_t *s, Py_ssize_t j,
                                       int64_t b0, const float *c, Py_ssize_t stride,
                                       Py_ssize_t W)
{
    double nj = (double)t->pixel_norm[j];
    for (Py_ssize_t u = 0; u < W; u++) {
        double cu = (double)c[u * stride];
        if (cu != 0.0) {
            s->rnorm[b0 + u - s->bin_lo] += cu * nj;
            s->rcount[b0 + u - s->bin_lo] += 1.0;
        }
    }
}

/* Add lane l's sum of coefficient u (row[u][l], bin g + l + u) into the block's sums:
 * first into one row of ROW bins, u in order, then the row into the sums. */
static ALWAYS_INLINE void add_row(double *dst, const double (*row)[LANES], Py_ssize_t W)
{
    double t[ROW];
    for (int k = 0; k < ROW; k++)
        t[k] = k < LANES ? row[0][k] : 0.0;
    for (Py_ssize_t u = 1; u < W; u++)
        for (int k = 0; k < ROW; k++)
            t[k] += (k >= u && k - u < LANES) ? row[u][k - u] : 0.0;
    for (int k = 0; k < ROW; k++)
        dst[k] += t[k];
}

/* The float32 sums of the last steps (at most FLUSH) into the float64 ones. */
static ALWAYS_INLINE void flush_c(double (*S)[LANES], float (*s)[LANES], Py_ssize_t W)
{
    for (Py_ssize_t u = 0; u < W; u++)
        for (int l = 0; l < LANES; l++) {
            S[u][l] += (double)s[u][l];
            s[u][l] = 0.0f;
        }
}

static ALWAYS_INLINE void batch_c(const job_t *t, const sums_t *s, const int64_t *bt,
                                  Py_ssize_t p0, Py_ssize_t W, int kind, int dkind)
{
    double S[8][LANES], V[8][LANES];
    float s32[8][LANES], v32[8][LANES];
    int64_t g = bt[T_BIN], end = bt[T_STEP0] + bt[T_NSTEP];
    memset(S, 0, sizeof(S));
    memset(V, 0, sizeof(V));
    memset(s32, 0, sizeof(s32));
    memset(v32, 0, sizeof(v32));
    for (int64_t st = bt[T_STEP0]; st < end; st++) {
        const uint16_t *o = t->off + st * LANES;
        const float *c = t->coef + st * W * LANES;
        prefetch_step(t, st, W, dkind);
        for (int l = 0; l < LANES; l++) {
            Py_ssize_t j = p0 + o[l];
            float x = load_value(t->frame, kind, j), y;
            float d = dkind == K_NONE    ? 0.0f
                      : dkind == K_STEPS ? t->dark_steps[st * LANES + l]
                                         : load_value(t->dark, dkind, j);
            if (pixel_signal(t, x, d, &y, kind, dkind)) {
                float xv = x > 1.0f ? x : 1.0f;
                for (Py_ssize_t u = 0; u < W; u++) {
                    float cu = c[u * LANES + l];
                    s32[u][l] = fmaf(cu, y, s32[u][l]);
                    v32[u][l] = fmaf(cu * cu, xv, v32[u][l]);
                }
            } else {
                remove_pixel(t, s, j, g + l, c + l, LANES, W);
            }
        }
        if ((st - bt[T_STEP0]) % FLUSH == FLUSH - 1 || st == end - 1) {
            flush_c(S, s32, W);
            flush_c(V, v32, W);
        }
    }
    add_row(s->sig + (g - s->bin_lo), (const double(*)[LANES])S, W);
    add_row(s->var + (g - s->bin_lo), (const double(*)[LANES])V, W);
}

/* ------------------------------------------------------------------ AVX-512 */
#if HAVE_AVX512_PATH

/* 16 values of a frame or dark at base + idx, as float32 (load_value on 16 lanes). */
static AVX512 ALWAYS_INLINE __m512 gather16(const void *base, int kind, __m512i idx)
{
    switch (kind) {
    case K_U16: {
        /* the aligned 32-bit word that holds the pixel (a load split between two
         * cache lines is slow in a gather), then its half (little-endian) */
        __m512i w = _mm512_i32gather_epi32(_mm512_srli_epi32(idx, 1), base, 4);
        __m512i sh = _mm512_slli_epi32(_mm512_and_si512(idx, _mm512_set1_epi32(1)), 4);
        __m512i r = _mm512_and_si512(_mm512_srlv_epi32(w, sh), _mm512_set1_epi32(0xFFFF));
        return _mm512_cvtepi32_ps(r);
    }
    case K_I32:
        return _mm512_cvtepi32_ps(_mm512_i32gather_epi32(idx, base, 4));
    case K_U32:
        return _mm512_cvtepu32_ps(_mm512_i32gather_epi32(idx, base, 4));
    case K_F32:
        return _mm512_i32gather_ps(idx, base, 4);
    default: {
        __m256 lo = _mm512_cvtpd_ps(_mm512_i32gather_pd(_mm512_castsi512_si256(idx), base, 8));
        __m256 hi = _mm512_cvtpd_ps(_mm512_i32gather_pd(_mm512_extracti64x4_epi64(idx, 1), base, 8));
        return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)),
                                                   _mm256_castps_pd(hi), 1));
    }
    }
}

static AVX512 ALWAYS_INLINE __mmask16 finite16(__m512 x)
{
    return _mm512_cmp_ps_mask(_mm512_sub_ps(x, x), _mm512_setzero_ps(), _CMP_EQ_OQ);
}

/* is_valid() on 16 lanes */
static AVX512 ALWAYS_INLINE __mmask16 valid16(const job_t *t, __m512 x, int kind)
{
    __mmask16 m = 0xFFFF;
    if (kind >= K_F32)
        m &= finite16(x);
    if (t->mask_negative && kind != K_U16 && kind != K_U32)
        m &= _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLT_UQ);
    if (t->check_dummy)
        m &= _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(x, _mm512_set1_ps(t->dummy))),
                                _mm512_set1_ps(t->delta_dummy), _CMP_NLE_UQ);
    return m;
}

/* Lanes k of (lo, hi) shifted up by u (u = 1..7, a literal after inlining): part 0,
 * 1, 2 are lanes 0-7, 8-15, 16-23 of the shifted row. */
#define SHIFT_CASE(U)                                                                     \
    case U:                                                                               \
        return _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(a),             \
                                                       _mm512_castpd_si512(b), 8 - U));
static AVX512 ALWAYS_INLINE __m512d align_up(__m512d a, __m512d b, Py_ssize_t u)
{
    switch (u) {
        SHIFT_CASE(1)
        SHIFT_CASE(2)
        SHIFT_CASE(3)
        SHIFT_CASE(4)
        SHIFT_CASE(5)
        SHIFT_CASE(6)
    default:
        return _mm512_castsi512_pd(
            _mm512_alignr_epi64(_mm512_castpd_si512(a), _mm512_castpd_si512(b), 1));
    }
}

/* add_row() on vectors: the same additions in the same order */
static AVX512 ALWAYS_INLINE void add_row16(double *dst, const __m512d (*row)[2], Py_ssize_t W)
{
    __m512d z = _mm512_setzero_pd();
    __m512d t0 = row[0][0], t1 = row[0][1], t2 = z;
    for (Py_ssize_t u = 1; u < W; u++) {
        t0 = _mm512_add_pd(t0, align_up(row[u][0], z, u));
        t1 = _mm512_add_pd(t1, align_up(row[u][1], row[u][0], u));
        t2 = _mm512_add_pd(t2, align_up(z, row[u][1], u));
    }
    _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), t0));
    _mm512_storeu_pd(dst + 8, _mm512_add_pd(_mm512_loadu_pd(dst + 8), t1));
    _mm512_storeu_pd(dst + 16, _mm512_add_pd(_mm512_loadu_pd(dst + 16), t2));
}

/* flush_c() on vectors */
static AVX512 ALWAYS_INLINE void flush16(__m512d (*S)[2], __m512 *s, Py_ssize_t W)
{
    for (Py_ssize_t u = 0; u < W; u++) {
        __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s[u]), 1));
        S[u][0] = _mm512_add_pd(S[u][0], _mm512_cvtps_pd(_mm512_castps512_ps256(s[u])));
        S[u][1] = _mm512_add_pd(S[u][1], _mm512_cvtps_pd(hi));
        s[u] = _mm512_setzero_ps();
    }
}

static AVX512 ALWAYS_INLINE void batch_avx512(const job_t *t, const sums_t *s,
                                              const int64_t *bt, const void *frame,
                                              const void *dark, Py_ssize_t p0, Py_ssize_t W,
                                              int kind, int dkind)
{
    __m512d S[8][2], V[8][2];
    __m512 s32[8], v32[8];
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t g = bt[T_BIN], end = bt[T_STEP0] + bt[T_NSTEP];
    for (Py_ssize_t u = 0; u < W; u++) {
        S[u][0] = S[u][1] = V[u][0] = V[u][1] = _mm512_setzero_pd();
        s32[u] = v32[u] = _mm512_setzero_ps();
    }
    for (int64_t st = bt[T_STEP0]; st < end; st++) {
        const uint16_t *o = t->off + st * LANES;
        const float *c = t->coef + st * W * LANES;
        prefetch_step(t, st, W, dkind);
        __m512i idx = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)o));
        __m512 x = gather16(frame, kind, idx), y = x, xv;
        __mmask16 m = valid16(t, x, kind);
        if (dkind != K_NONE) {
            __m512 d = dkind == K_STEPS ? _mm512_loadu_ps(t->dark_steps + st * LANES)
                                        : gather16(dark, dkind, idx);
            m &= finite16(d);
            y = _mm512_sub_ps(x, d);
        }
        xv = _mm512_max_ps(x, one);
        for (Py_ssize_t u = 0; u < W; u++) {
            __m512 cu = _mm512_loadu_ps(c + u * LANES);
            s32[u] = _mm512_mask3_fmadd_ps(cu, y, s32[u], m);
            v32[u] = _mm512_mask3_fmadd_ps(_mm512_mul_ps(cu, cu), xv, v32[u], m);
        }
        if (m != 0xFFFF) {
            unsigned bad = ~(unsigned)m & 0xFFFFu;
            while (bad) {
                int l = __builtin_ctz(bad);
                bad &= bad - 1;
                remove_pixel(t, s, p0 + o[l], g + l, c + l, LANES, W);
            }
        }
        if ((st - bt[T_STEP0]) % FLUSH == FLUSH - 1 || st == end - 1) {
            flush16(S, s32, W);
            flush16(V, v32, W);
        }
    }
    add_row16(s->sig + (g - s->bin_lo), (const __m512d(*)[2])S, W);
    add_row16(s->var + (g - s->bin_lo), (const __m512d(*)[2])V, W);
}

#define BATCHES_AVX512(W, KIND, DKIND)                                                    \
    for (int64_t b = lo; b < hi; b++)                                                     \
        batch_avx512(t, s, t->batches + T_COLS * b, frame, dark, p0, W, KIND, DKIND);

/* The batches lo..hi of one block; W, the frame's and the dark's dtype become
 * literals in each call, so the loops over u unroll and the dtype switches go. */
static AVX512 void block_avx512(const job_t *t, const sums_t *s, int64_t lo, int64_t hi,
                                Py_ssize_t p0)
{
    const char *frame = (const char *)t->frame + p0 * item_size(t->frame_kind);
    const char *dark =
        t->dark == NULL ? NULL : (const char *)t->dark + p0 * item_size(t->dark_kind);
    int dkind = t->dark_steps != NULL ? K_STEPS : t->dark_kind;
#define DARKS(W, KIND)                                                                    \
    switch (dkind) {                                                                      \
    case K_NONE:                                                                          \
        BATCHES_AVX512(W, KIND, K_NONE) break;                                            \
    case K_STEPS:                                                                         \
        BATCHES_AVX512(W, KIND, K_STEPS) break;                                           \
    case K_F32:                                                                           \
        BATCHES_AVX512(W, KIND, K_F32) break;                                             \
    default:                                                                              \
        BATCHES_AVX512(W, KIND, K_F64)                                                    \
    }
#define KINDS(W)                                                                          \
    switch (t->frame_kind) {                                                              \
    case K_U16:                                                                           \
        DARKS(W, K_U16) break;                                                            \
    case K_I32:                                                                           \
        DARKS(W, K_I32) break;                                                            \
    case K_U32:                                                                           \
        DARKS(W, K_U32) break;                                                            \
    case K_F32:                                                                           \
        DARKS(W, K_F32) break;                                                            \
    default:                                                                              \
        DARKS(W, K_F64)                                                                   \
    }
    if (t->width == 8) {
        KINDS(8)
    } else {
        KINDS(4)
    }
#undef KINDS
#undef DARKS
}

static int cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#else
static int cpu_has_avx512(void) { return 0; }
#endif

/* ------------------------------------------------------------------ blocks */

#define BATCHES_C(W, KIND, DKIND)                                                         \
    for (int64_t b = lo; b < hi; b++)                                                     \
        batch_c(t, s, t->batches + T_COLS * b, p0, W, KIND, DKIND);

/* With GCC on x86-64 Linux, a clone for CPUs with FMA (fmaf one instruction, as in the
 * AVX-512 path) next to the default one (fmaf from libm: the same roundings, slower). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define FMA_CLONES
#endif

FMA_CLONES
static void block_c(const job_t *t, const sums_t *s, int64_t lo, int64_t hi, Py_ssize_t p0)
{
    int dkind = t->dark_steps != NULL ? K_STEPS : t->dark_kind;
#define DARKS(W, KIND)                                                                    \
    switch (dkind) {                                                                      \
    case K_NONE:                                                                          \
        BATCHES_C(W, KIND, K_NONE) break;                                                 \
    case K_STEPS:                                                                         \
        BATCHES_C(W, KIND, K_STEPS) break;                                                \
    case K_F32:                                                                           \
        BATCHES_C(W, KIND, K_F32) break;                                                  \
    default:                                                                              \
        BATCHES_C(W, KIND, K_F64)                                                         \
    }
#define KINDS(W)                                                                          \
    switch (t->frame_kind) {                                                              \
    case K_U16:                                                                           \
        DARKS(W, K_U16) break;                                                            \
    case K_I32:                                                                           \
        DARKS(W, K_I32) break;                                                            \
    case K_U32:                                                                           \
        DARKS(W, K_U32) break;                                                            \
    case K_F32:                                                                           \
        DARKS(W, K_F32) break;                                                            \
    default:                                                                              \
        DARKS(W, K_F64)                                                                   \
    }
    if (t->width == 8) {
        KINDS(8)
    } else {
        KINDS(4)
    }
#undef KINDS
#undef DARKS
}

static void overflow_block(const job_t *t, const sums_t *s, int64_t lo, int64_t hi)
{
    for (int64_t e = lo; e < hi; e++) {
        Py_ssize_t j = t->ov_pix[e];
        int64_t b = t->ov_bin[e] - s->bin_lo;
        float c = t->ov_coef[e];
        float x = load_value(t->frame, t->frame_kind, j);
        float d = t->dark_kind == K_NONE ? 0.0f : load_value(t->dark, t->dark_kind, j);
        float y;
        if (pixel_signal(t, x, d, &y, t->frame_kind, t->dark_kind)) {
            s->sig[b] += (double)(c * y);
            s->var[b] += (double)(c * c * (x > 1.0f ? x : 1.0f));
        } else {
            s->rnorm[b] += (double)c * (double)t->pixel_norm[j];
            s->rcount[b] += 1.0;
        }
    }
}

/* Read the strip's frame (and dark) once in order, one load per cache line, so that
 * the gathers find it in cache: a gather that misses waits for its lines one by one,
 * a sequential pass lets the hardware prefetcher stream them. */
static void touch(const void *base, Py_ssize_t nbytes)
{
    const volatile unsigned char *p = (const volatile unsigned char *)base;
    unsigned char sink = 0;
    for (Py_ssize_t i = 0; i < nbytes; i += 64)
        sink ^= p[i];
    (void)sink;
}

/* out[r, b] += block k's row r at bin b (the bins of its window below nout) */
static void add_block(const job_t *t, int64_t k)
{
    const int64_t *bk = t->blocks + B_COLS * k;
    int64_t lo = bk[B_BIN_LO], n = bk[B_NBIN];
    int64_t m = lo >= t->nout ? 0 : (lo + n > t->nout ? t->nout - lo : n);
    for (int r = 0; r < 4; r++) {
        const double *src = t->acc + bk[B_ACC] + r * n;
        double *d = t->out + r * t->nout + lo;
        for (int64_t i = 0; i < m; i++)
            d[i] += src[i];
    }
}

/* Add the done blocks that come next in block order into out.  One thread at a time
 * (the lock); one that finds it taken leaves its block to the holder, which looks
 * again after letting go: the block's done flag is set before the try, the holder's
 * look comes after its release, and the four are ordered (sequentially consistent
 * atomics), so no done block is left out when the last thread returns. */
static void add_ready(job_t *t)
{
    int64_t *next = t->counter + 1, *lock = t->counter + 2, *done = t->counter + 3;
    for (;;) {
        if (swap(lock, 1) != 0)
            return;
        int64_t r = *next;
        while (r < t->nblock && get(done + r)) {
            add_block(t, r);
            r++;
        }
        *next = r;
        set(lock, 0);
        if (r >= t->nblock || !get(done + r))
            return;
    }
}

static void run_job(job_t *t, int simd)
{
    for (;;) {
        int64_t k = next_block(t->counter);
        if (k >= t->nblock)
            break;
        const int64_t *bk = t->blocks + B_COLS * k;
        double *acc = t->acc + bk[B_ACC]; /* the block's own sums */
        int64_t nbin = bk[B_NBIN];
        sums_t s = {acc, acc + nbin, acc + 2 * nbin, acc + 3 * nbin, bk[B_BIN_LO]};
        memset(acc, 0, (size_t)(4 * nbin) * sizeof(double));
        {
            Py_ssize_t p0 = bk[B_P0], n = (k + 1 < t->nblock ? bk[B_COLS + B_P0] : t->npix) - p0;
            touch((const char *)t->frame + p0 * item_size(t->frame_kind),
                  n * item_size(t->frame_kind));
            if (t->dark != NULL && t->dark_steps == NULL) /* dark_steps: read in order */
                touch((const char *)t->dark + p0 * item_size(t->dark_kind),
                      n * item_size(t->dark_kind));
        }
#if HAVE_AVX512_PATH
        if (simd)
            block_avx512(t, &s, bk[B_BATCH_LO], bk[B_BATCH_HI], bk[B_P0]);
        else
#endif
            block_c(t, &s, bk[B_BATCH_LO], bk[B_BATCH_HI], bk[B_P0]);
        overflow_block(t, &s, bk[B_OV_LO], bk[B_OV_HI]);
        if (t->out != NULL) {
            set(t->counter + 3 + k, 1);
            add_ready(t);
        }
    }
}

/* ------------------------------------------------------------------ argument checks */

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: a C-contiguous%s buffer is needed", name,
                     writable ? " writable" : "");
        return -1;
    }
    return 0;
}

static char format_code(const Py_buffer *v)
{
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    return *f;
}

static int value_kind(const Py_buffer *v, const char *name, int allow_int)
{
    char c = format_code(v);
    if (c == 'H' && v->itemsize == 2 && allow_int)
        return K_U16;
    if ((c == 'i' || c == 'l') && v->itemsize == 4 && allow_int)
        return K_I32;
    if ((c == 'I' || c == 'L') && v->itemsize == 4 && allow_int)
        return K_U32;
    if (c == 'f' && v->itemsize == 4)
        return K_F32;
    if (c == 'd' && v->itemsize == 8)
        return K_F64;
    PyErr_Format(PyExc_TypeError, "%s: unsupported dtype (buffer format %s)", name,
                 v->format ? v->format : "?");
    return -1;
}

static int check_items(const Py_buffer *v, char code, Py_ssize_t itemsize, Py_ssize_t n,
                       const char *name)
{
    if (format_code(v) != code || v->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: wrong dtype (format %s)", name,
                     v->format ? v->format : "?");
        return -1;
    }
    if (n >= 0 && v->len / itemsize < n) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items, at least %zd needed", name,
                     v->len / itemsize, n);
        return -1;
    }
    return 0;
}

static int int32_code(const Py_buffer *v)
{
    char c = format_code(v);
    return v->itemsize == 4 && (c == 'i' || c == 'l');
}

static int int64_code(const Py_buffer *v)
{
    char c = format_code(v);
    return v->itemsize == 8 && (c == 'q' || c == 'l');
}

static int fail(const char *what)
{
    PyErr_SetString(PyExc_ValueError, what);
    return -1;
}

/* The block and batch tables: every batch, its row of ROW bins and every overflow
 * entry inside its block's window; the windows inside acc. */
static int check_tables(const job_t *t, Py_ssize_t npix, Py_ssize_t nov, Py_ssize_t nacc)
{
    int64_t batch_end = 0, ov_end = 0;
    for (Py_ssize_t k = 0; k < t->nblock; k++) {
        const int64_t *bk = t->blocks + B_COLS * k;
        int64_t lo = bk[B_BIN_LO], nbin = bk[B_NBIN];
        if (bk[B_P0] < 0 || bk[B_P0] >= npix || bk[B_BATCH_LO] != batch_end ||
            bk[B_BATCH_HI] < bk[B_BATCH_LO] || bk[B_BATCH_HI] > t->nbatch ||
            bk[B_OV_LO] != ov_end || bk[B_OV_HI] < bk[B_OV_LO] || bk[B_OV_HI] > nov ||
            lo < 0 || nbin < 0 || bk[B_ACC] < 0 || bk[B_ACC] + 4 * nbin > nacc)
            return fail("blocks: a block out of range");
        batch_end = bk[B_BATCH_HI];
        ov_end = bk[B_OV_HI];
        for (int64_t b = bk[B_BATCH_LO]; b < bk[B_BATCH_HI]; b++) {
            const int64_t *bt = t->batches + T_COLS * b;
            if (bt[T_BIN] < lo || bt[T_BIN] + ROW > lo + nbin || bt[T_NSTEP] < 0 ||
                bt[T_STEP0] < 0 || bt[T_STEP0] + bt[T_NSTEP] > t->nstep)
                return fail("batches: a batch out of range");
        }
        for (int64_t e = bk[B_OV_LO]; e < bk[B_OV_HI]; e++)
            if (t->ov_pix[e] < 0 || t->ov_pix[e] >= npix || t->ov_bin[e] < lo ||
                t->ov_bin[e] >= lo + nbin)
                return fail("ov_pix, ov_bin: an entry outside its block");
    }
    if (batch_end != t->nbatch || ov_end != nov)
        return fail("blocks: batches or overflow entries left out");
    return 0;
}

enum { A_OFF, A_COEF, A_BATCH, A_BLOCK, A_OVPIX, A_OVBIN, A_OVCOEF, A_FRAME, A_DARK,
       A_DSTEPS, A_NORM, A_ACC, A_COUNTER, A_OUT, NARG };

static const char *arg_names[NARG] = {"off",     "coef",  "batches",    "blocks", "ov_pix",
                                      "ov_bin",  "ov_coef", "frame",    "dark",   "dark_steps",
                                      "pixel_norm", "acc", "counter",  "out"};

/* the arguments that may be None */
static int optional(int k) { return k == A_DARK || k == A_DSTEPS || k == A_OUT; }

static int check_job(job_t *t, Py_buffer *b)
{
    Py_ssize_t npix = b[A_FRAME].len / b[A_FRAME].itemsize;
    Py_ssize_t nov = b[A_OVPIX].len / 4;
    if (format_code(&b[A_OFF]) != 'H' || b[A_OFF].itemsize != 2 ||
        b[A_OFF].len % (2 * LANES) != 0)
        return fail("off: uint16, 16 per step");
    t->nstep = b[A_OFF].len / (2 * LANES);
    if (check_items(&b[A_COEF], 'f', 4, -1, "coef") < 0 ||
        check_items(&b[A_OVCOEF], 'f', 4, nov, "ov_coef") < 0 ||
        check_items(&b[A_NORM], 'f', 4, npix, "pixel_norm") < 0 ||
        check_items(&b[A_ACC], 'd', 8, -1, "acc") < 0)
        return -1;
    if (t->nstep > 0)
        t->width = b[A_COEF].len / 4 / LANES / t->nstep;
    if ((t->width != 4 && t->width != 8) || b[A_COEF].len != t->nstep * t->width * LANES * 4)
        return fail("coef: 16 x 4 or 16 x 8 per step");
    if (!int32_code(&b[A_OVPIX]) || !int32_code(&b[A_OVBIN]) || b[A_OVBIN].len / 4 != nov)
        return fail("ov_pix, ov_bin: int32 of one length");
    if (!int64_code(&b[A_BATCH]) || !int64_code(&b[A_BLOCK]) || !int64_code(&b[A_COUNTER]) ||
        b[A_BATCH].len % (8 * T_COLS) != 0 || b[A_BLOCK].len % (8 * B_COLS) != 0 ||
        b[A_COUNTER].len < 8)
        return fail("batches, blocks, counter: int64 tables");
    t->nbatch = b[A_BATCH].len / (8 * T_COLS);
    t->nblock = b[A_BLOCK].len / (8 * B_COLS);
    t->batches = (const int64_t *)b[A_BATCH].buf;
    t->blocks = (const int64_t *)b[A_BLOCK].buf;
    t->ov_pix = (const int32_t *)b[A_OVPIX].buf;
    t->ov_bin = (const int32_t *)b[A_OVBIN].buf;
    return check_tables(t, npix, nov, b[A_ACC].len / 8);
}

static PyObject *scatter(PyObject *self, PyObject *args)
{
    PyObject *o[NARG];
    Py_buffer b[NARG];
    int got = 0, mask_negative, check_dummy, simd, ok = 0;
    double dummy, delta_dummy;
    job_t t;
    (void)self;

    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOppddp", &o[0], &o[1], &o[2], &o[3], &o[4],
                          &o[5], &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &o[12], &o[13],
                          &mask_negative, &check_dummy, &dummy, &delta_dummy, &simd))
        return NULL;
    memset(&t, 0, sizeof(t));
    for (got = 0; got < NARG; got++) {
        if (optional(got) && o[got] == Py_None) {
            memset(&b[got], 0, sizeof(Py_buffer));
            continue;
        }
        if (get_buffer(o[got], &b[got], got == A_ACC || got == A_COUNTER || got == A_OUT,
                       arg_names[got]) < 0)
            goto done;
    }
    if (b[A_FRAME].len == 0) {
        PyErr_SetString(PyExc_ValueError, "frame: no pixels");
        goto done;
    }
    if ((t.frame_kind = value_kind(&b[A_FRAME], "frame", 1)) < 0)
        goto done;
    t.dark_kind = K_NONE;
    if (o[A_DARK] != Py_None) {
        if ((t.dark_kind = value_kind(&b[A_DARK], "dark", 0)) < 0)
            goto done;
        if (b[A_DARK].len / b[A_DARK].itemsize != b[A_FRAME].len / b[A_FRAME].itemsize) {
            PyErr_SetString(PyExc_ValueError, "dark: one value per pixel");
            goto done;
        }
    }
    if (check_job(&t, b) < 0)
        goto done;
    if (o[A_DSTEPS] != Py_None) {
        if (o[A_DARK] == Py_None) {
            PyErr_SetString(PyExc_ValueError, "dark_steps: needs the dark too");
            goto done;
        }
        if (check_items(&b[A_DSTEPS], 'f', 4, -1, "dark_steps") < 0)
            goto done;
        if (b[A_DSTEPS].len != t.nstep * LANES * 4) {
            PyErr_SetString(PyExc_ValueError, "dark_steps: 16 float32 per step");
            goto done;
        }
        t.dark_steps = (const float *)b[A_DSTEPS].buf;
    }
    t.off = (const uint16_t *)b[A_OFF].buf;
    t.coef = (const float *)b[A_COEF].buf;
    t.ov_coef = (const float *)b[A_OVCOEF].buf;
    t.frame = b[A_FRAME].buf;
    t.npix = b[A_FRAME].len / b[A_FRAME].itemsize;
    t.dark = o[A_DARK] == Py_None ? NULL : b[A_DARK].buf;
    t.pixel_norm = (const float *)b[A_NORM].buf;
    t.mask_negative = mask_negative;
    t.check_dummy = check_dummy;
    t.dummy = (float)dummy;
    t.delta_dummy = (float)delta_dummy;
    t.acc = (double *)b[A_ACC].buf;
    t.counter = (int64_t *)b[A_COUNTER].buf;
    if (o[A_OUT] != Py_None) {
        if (check_items(&b[A_OUT], 'd', 8, -1, "out") < 0)
            goto done;
        if (b[A_OUT].len % 32 != 0) {
            PyErr_SetString(PyExc_ValueError, "out: 4 rows of float64");
            goto done;
        }
        if (b[A_COUNTER].len / 8 < 3 + t.nblock) {
            PyErr_SetString(PyExc_ValueError, "counter: 3 + one per block with out");
            goto done;
        }
        t.out = (double *)b[A_OUT].buf;
        t.nout = b[A_OUT].len / 32;
    }
    simd = simd && cpu_has_avx512();
    Py_BEGIN_ALLOW_THREADS
    run_job(&t, simd);
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    for (int k = 0; k < got; k++)
        if (!(optional(k) && o[k] == Py_None))
            PyBuffer_Release(&b[k]);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *simd_available(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyBool_FromLong(cpu_has_avx512());
}

static PyMethodDef methods[] = {
    {"scatter", scatter, METH_VARARGS, "One pass of the operator over a frame (see the module)."},
    {"simd_available", simd_available, METH_NOARGS, "True when the AVX-512 path runs here."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scatter",
                                    "The fast integration's kernel (C).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scatter(void) { return PyModule_Create(&module); }
