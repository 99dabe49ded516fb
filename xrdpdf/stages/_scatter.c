/*
 * The kernel of the fast integration (xrdpdf.stages._fastint): one pass over a
 * frame with pyFAI's CSR operator stored by pixel.
 *
 * Pixel j adds to bins first[j] + u (u < W, W = 4 or 8) with the coefficients
 * pad[j, u], plus the rare overflow entries (ov_pix, ov_bin, ov_coef) of pixels that
 * touch more bins.  For a valid pixel it adds c * (raw - dark) to the signal sum and
 * c^2 * max(raw, 1) to the variance sum (pyFAI's Cython CSR engine with
 * error_model="poisson"); for an invalid one it adds c * norm[j] to the removed-norm
 * sum and 1 to the removed-count of each bin it touches (c != 0).
 *
 * The pixels are cut into blocks pix_bounds[k]:pix_bounds[k + 1] (with the overflow
 * entries ov_bounds[k]:ov_bounds[k + 1]); every calling thread takes the next free
 * block from a shared counter (an atomic add), so a thread slowed down by a busy
 * machine takes fewer blocks.  Each block adds into its own accumulator rows, which
 * the caller sums in block order: the result does not depend on which thread took
 * which block, nor on the number of threads.  The GIL is released for the whole
 * pass.  The pixel and bin indices of first and ov_* are checked by the caller once
 * per operator (checking them here would cost a pass over the operator per frame).
 *
 * Only the Python C API and the buffer protocol are used (no numpy headers), so the
 * extension builds with nothing but a C compiler and the Python headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#include <windows.h>
static int64_t next_block(int64_t *counter)
{
    return InterlockedExchangeAdd64((volatile LONG64 *)counter, 1);
}
#else
static int64_t next_block(int64_t *counter)
{
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
#endif

#if defined(_MSC_VER)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif

enum { K_U16 = 0, K_I32 = 1, K_U32 = 2, K_F32 = 3, K_F64 = 4, K_NONE = 5 };

typedef struct {
    const float *pad;
    Py_ssize_t width;
    const void *first;
    int first_u16;
    const int32_t *ov_pix;
    const int32_t *ov_bin;
    const float *ov_coef;
    const int64_t *pix_bounds;
    const int64_t *ov_bounds;
    Py_ssize_t nblock;
    const void *frame;
    int frame_kind;
    const void *dark;
    int dark_kind;
    const float *pixel_norm;
    int mask_negative;
    int check_dummy;
    double dummy;
    double delta_dummy;
    double *acc_sig;
    double *acc_var;
    double *acc_rnorm;
    double *acc_rcount;
    double *acc;
    Py_ssize_t nacc;
    int64_t *counter;
} job_t;

/* A pixel value as pyFAI's preprocessing sees it: 32-bit integers go through float32. */
static ALWAYS_INLINE double load_value(const void *base, int kind, Py_ssize_t j)
{
    switch (kind) {
    case K_U16:
        return (double)((const uint16_t *)base)[j];
    case K_I32:
        return (double)(float)((const int32_t *)base)[j];
    case K_U32:
        return (double)(float)((const uint32_t *)base)[j];
    case K_F32:
        return (double)((const float *)base)[j];
    default:
        return ((const double *)base)[j];
    }
}

static ALWAYS_INLINE int is_valid(const job_t *t, double x, int kind)
{
    if (kind >= K_F32 && !isfinite(x))
        return 0;
    if (t->mask_negative && x < 0.0)
        return 0;
    if (t->check_dummy && fabs(x - t->dummy) <= t->delta_dummy)
        return 0;
    return 1;
}

/* 1 and *y = raw - dark when pixel j (raw value x) counts in this frame, else 0 */
static ALWAYS_INLINE int pixel_signal(const job_t *t, Py_ssize_t j, double x, double *y, int kind)
{
    if (!is_valid(t, x, kind))
        return 0;
    *y = x;
    if (t->dark_kind != K_NONE) {
        double d = load_value(t->dark, t->dark_kind, j);
        if (!isfinite(d)) /* pyFAI masks a non-finite raw - dark */
            return 0;
        *y = x - d;
    }
    return 1;
}

static ALWAYS_INLINE Py_ssize_t first_bin(const job_t *t, Py_ssize_t j)
{
    return t->first_u16 ? (Py_ssize_t)((const uint16_t *)t->first)[j]
                        : (Py_ssize_t)((const int32_t *)t->first)[j];
}

/* Pixel j with the padded width W: its signal and variance, or its removal. */
static ALWAYS_INLINE void one_pixel(const job_t *t, Py_ssize_t j, Py_ssize_t W, int kind)
{
    const float *c = t->pad + j * W;
    Py_ssize_t b0 = first_bin(t, j);
    double x = load_value(t->frame, kind, j);
    double y;
    if (pixel_signal(t, j, x, &y, kind)) {
        double xv = x > 1.0 ? x : 1.0;
        double *a_s = t->acc_sig + b0, *a_v = t->acc_var + b0;
        for (Py_ssize_t u = 0; u < W; u++) {
            double cu = (double)c[u];
            a_s[u] += cu * y;
            a_v[u] += cu * cu * xv;
        }
    } else {
        double nj = (double)t->pixel_norm[j];
        for (Py_ssize_t u = 0; u < W; u++) {
            double cu = (double)c[u];
            if (cu != 0.0) {
                t->acc_rnorm[b0 + u] += cu * nj;
                t->acc_rcount[b0 + u] += 1.0;
            }
        }
    }
}

/* One block of pixels.  W and kind are literals at each call, so the loops over u
 * unroll and the dtype switch goes. */
static ALWAYS_INLINE void pixel_block(const job_t *t, Py_ssize_t lo, Py_ssize_t hi,
                                      Py_ssize_t W, int kind)
{
    for (Py_ssize_t j = lo; j < hi; j++)
        one_pixel(t, j, W, kind);
}

#define PIXEL_BLOCK(W)                                                                    \
    switch (t->frame_kind) {                                                              \
    case K_U16:                                                                           \
        pixel_block(t, lo, hi, W, K_U16);                                                 \
        break;                                                                            \
    case K_I32:                                                                           \
        pixel_block(t, lo, hi, W, K_I32);                                                 \
        break;                                                                            \
    case K_U32:                                                                           \
        pixel_block(t, lo, hi, W, K_U32);                                                 \
        break;                                                                            \
    case K_F32:                                                                           \
        pixel_block(t, lo, hi, W, K_F32);                                                 \
        break;                                                                            \
    default:                                                                              \
        pixel_block(t, lo, hi, W, K_F64);                                                 \
    }

static void overflow_block(const job_t *t, Py_ssize_t lo, Py_ssize_t hi)
{
    for (Py_ssize_t e = lo; e < hi; e++) {
        Py_ssize_t j = t->ov_pix[e];
        Py_ssize_t b = t->ov_bin[e];
        double c = (double)t->ov_coef[e];
        double x = load_value(t->frame, t->frame_kind, j);
        double y;
        if (pixel_signal(t, j, x, &y, t->frame_kind)) {
            t->acc_sig[b] += c * y;
            t->acc_var[b] += c * c * (x > 1.0 ? x : 1.0);
        } else {
            t->acc_rnorm[b] += c * (double)t->pixel_norm[j];
            t->acc_rcount[b] += 1.0;
        }
    }
}

static void run_job(job_t *t)
{
    for (;;) {
        int64_t k = next_block(t->counter);
        if (k >= t->nblock)
            break;
        double *acc = t->acc + 4 * t->nacc * k; /* the block's own sums */
        t->acc_sig = acc;
        t->acc_var = acc + t->nacc;
        t->acc_rnorm = acc + 2 * t->nacc;
        t->acc_rcount = acc + 3 * t->nacc;
        Py_ssize_t lo = t->pix_bounds[k], hi = t->pix_bounds[k + 1];
        if (t->width == 8) {
            PIXEL_BLOCK(8)
        } else {
            PIXEL_BLOCK(4)
        }
        overflow_block(t, t->ov_bounds[k], t->ov_bounds[k + 1]);
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

enum { A_PAD, A_FIRST, A_OVPIX, A_OVBIN, A_OVCOEF, A_PIXB, A_OVB, A_FRAME, A_DARK, A_NORM,
       A_ACC, A_COUNTER, NARG };

static const char *arg_names[NARG] = {"pad", "first", "ov_pix", "ov_bin", "ov_coef",
                                      "pix_bounds", "ov_bounds", "frame", "dark",
                                      "pixel_norm", "acc", "counter"};

static int check_job(job_t *t, Py_buffer *b)
{
    Py_ssize_t npix = b[A_FRAME].len / b[A_FRAME].itemsize;
    Py_ssize_t nov = b[A_OVPIX].len / 4;
    Py_ssize_t nbound = b[A_PIXB].len / 8;
    if (t->width != 4 && t->width != 8) {
        PyErr_SetString(PyExc_ValueError, "pad: width must be 4 or 8");
        return -1;
    }
    if (check_items(&b[A_PAD], 'f', 4, npix * t->width, "pad") < 0 ||
        check_items(&b[A_OVCOEF], 'f', 4, nov, "ov_coef") < 0 ||
        check_items(&b[A_NORM], 'f', 4, npix, "pixel_norm") < 0 ||
        check_items(&b[A_ACC], 'd', 8, -1, "acc") < 0)
        return -1;
    if (!int32_code(&b[A_OVPIX]) || !int32_code(&b[A_OVBIN]) || b[A_OVBIN].len / 4 != nov) {
        PyErr_SetString(PyExc_TypeError, "ov_pix, ov_bin: int32 of one length");
        return -1;
    }
    if (!int64_code(&b[A_PIXB]) || !int64_code(&b[A_OVB]) || !int64_code(&b[A_COUNTER]) ||
        b[A_OVB].len / 8 != nbound || nbound < 1 || b[A_COUNTER].len < 8) {
        PyErr_SetString(PyExc_TypeError, "pix_bounds, ov_bounds, counter: int64 (bounds of one length)");
        return -1;
    }
    if (format_code(&b[A_FIRST]) == 'H' && b[A_FIRST].itemsize == 2)
        t->first_u16 = 1;
    else if (int32_code(&b[A_FIRST]))
        t->first_u16 = 0;
    else {
        PyErr_SetString(PyExc_TypeError, "first: uint16 or int32");
        return -1;
    }
    if (b[A_FIRST].len / b[A_FIRST].itemsize != npix) {
        PyErr_SetString(PyExc_ValueError, "first: one entry per pixel");
        return -1;
    }
    t->nblock = nbound - 1;
    {
        const int64_t *pb = (const int64_t *)b[A_PIXB].buf, *ob = (const int64_t *)b[A_OVB].buf;
        for (Py_ssize_t k = 0; k <= t->nblock; k++)
            if (pb[k] < 0 || pb[k] > npix || ob[k] < 0 || ob[k] > nov ||
                (k > 0 && (pb[k] < pb[k - 1] || ob[k] < ob[k - 1]))) {
                PyErr_SetString(PyExc_ValueError, "pix_bounds/ov_bounds out of range");
                return -1;
            }
    }
    if (b[A_ACC].len / 8 % (4 * t->nblock) != 0) {
        PyErr_SetString(PyExc_ValueError, "acc: four rows of one length per block");
        return -1;
    }
    t->nacc = b[A_ACC].len / 8 / 4 / t->nblock;
    return 0;
}

static PyObject *scatter(PyObject *self, PyObject *args)
{
    PyObject *o[NARG];
    Py_buffer b[NARG];
    int got = 0, mask_negative, check_dummy, ok = 0;
    double dummy, delta_dummy;
    job_t t;
    (void)self;

    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOppdd", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                          &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &mask_negative,
                          &check_dummy, &dummy, &delta_dummy))
        return NULL;
    memset(&t, 0, sizeof(t));
    for (got = 0; got < NARG; got++) {
        if (got == A_DARK && o[got] == Py_None) {
            memset(&b[got], 0, sizeof(Py_buffer));
            continue;
        }
        if (get_buffer(o[got], &b[got], got == A_ACC || got == A_COUNTER, arg_names[got]) < 0)
            goto done;
    }
    {
        Py_ssize_t npix = b[A_FRAME].len / b[A_FRAME].itemsize;
        if (npix == 0) {
            PyErr_SetString(PyExc_ValueError, "frame: no pixels");
            goto done;
        }
        t.width = b[A_PAD].len / 4 / npix;
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
    t.pad = (const float *)b[A_PAD].buf;
    t.first = b[A_FIRST].buf;
    t.ov_pix = (const int32_t *)b[A_OVPIX].buf;
    t.ov_bin = (const int32_t *)b[A_OVBIN].buf;
    t.ov_coef = (const float *)b[A_OVCOEF].buf;
    t.pix_bounds = (const int64_t *)b[A_PIXB].buf;
    t.ov_bounds = (const int64_t *)b[A_OVB].buf;
    t.frame = b[A_FRAME].buf;
    t.dark = o[A_DARK] == Py_None ? NULL : b[A_DARK].buf;
    t.pixel_norm = (const float *)b[A_NORM].buf;
    t.mask_negative = mask_negative;
    t.check_dummy = check_dummy;
    t.dummy = dummy;
    t.delta_dummy = delta_dummy;
    t.acc = (double *)b[A_ACC].buf;
    t.counter = (int64_t *)b[A_COUNTER].buf;
    Py_BEGIN_ALLOW_THREADS
    run_job(&t);
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    for (int k = 0; k < got; k++)
        if (!(k == A_DARK && o[k] == Py_None))
            PyBuffer_Release(&b[k]);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"scatter", scatter, METH_VARARGS, "One pass of the operator over a frame (see the module)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scatter",
                                    "The fast integration's kernel (C).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scatter(void) { return PyModule_Create(&module); }
