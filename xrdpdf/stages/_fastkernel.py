"""The numba kernel of the fast integration: one multithreaded pass over the CSR operator."""

from __future__ import annotations

import numba
import numpy as np

_BLOCKS_PER_THREAD = 32


@numba.njit(inline="always", nogil=True)
def _valid(x, mask_negative, check_dummy, dummy, delta_dummy):  # pragma: no cover - jit
    if not np.isfinite(x):
        return False
    if mask_negative and x < 0.0:
        return False
    if check_dummy and abs(x - dummy) <= delta_dummy:
        return False
    return True


@numba.njit(inline="always", nogil=True)
def _add4(a_s, a_v, pad, j, col, b0, y, xv):  # pragma: no cover - jit
    # four coefficients of pixel j from column `col` (a literal: the loop unrolls)
    for u in range(4):
        c = np.float64(pad[j, col + u])
        b = b0 + col + u
        a_s[b] += c * y
        a_v[b] += c * c * xv


@numba.njit(inline="always", nogil=True)
def _remove4(a_n, a_c, pad, j, col, b0, nj):  # pragma: no cover - jit
    for u in range(4):
        c = np.float64(pad[j, col + u])
        if c != 0.0:
            b = b0 + col + u
            a_n[b] += c * nj
            a_c[b] += 1.0


@numba.njit(parallel=True, nogil=True, cache=True)
def _scatter_kernel(
    pad,
    first,
    ov_pix,
    ov_bin,
    ov_coef,
    pix_bounds,
    ov_bounds,
    frame,
    dark,
    has_dark,
    pixel_norm,
    mask_negative,
    check_dummy,
    dummy,
    delta_dummy,
    acc_sig,
    acc_var,
    acc_rnorm,
    acc_rcount,
):  # pragma: no cover - jit
    """One pass over the frame: Σc·(raw−dark) and Σc²·max(raw, 1) per bin.

    Pixel *j* adds to bins ``first[j] + u`` with coefficients ``pad[j, u]`` (zero
    padded to a width of 4 or 8, so the inner loops have fixed trip counts and
    unroll), plus the rare extra ``(ov_pix, ov_bin, ov_coef)`` entries of pixels
    that touch more bins.  The pixels are cut into blocks ``pix_bounds[k]:pix_bounds[k+1]``
    that the threads take as they become free (run it with a parallel chunk size of 1),
    each thread adding into its own row of the ``acc_*`` arrays.  An invalid pixel adds
    nothing to the sums; its c·norm goes to ``acc_rnorm`` and its non-zero
    coefficient count to ``acc_rcount`` instead.
    """
    nblock = pix_bounds.shape[0] - 1
    wide = pad.shape[1] == 8
    for blk in numba.prange(nblock):
        t = numba.get_thread_id()
        a_s = acc_sig[t]
        a_v = acc_var[t]
        a_n = acc_rnorm[t]
        a_c = acc_rcount[t]
        for j in range(pix_bounds[blk], pix_bounds[blk + 1]):
            x = np.float64(frame[j])
            b0 = np.int64(first[j])
            ok = _valid(x, mask_negative, check_dummy, dummy, delta_dummy)
            y = x
            if ok and has_dark:
                d = np.float64(dark[j])
                ok = np.isfinite(d)  # pyFAI masks a non-finite raw − dark
                y = x - d
            if ok:
                xv = max(x, 1.0)
                _add4(a_s, a_v, pad, j, 0, b0, y, xv)
                if wide:
                    _add4(a_s, a_v, pad, j, 4, b0, y, xv)
            else:
                nj = np.float64(pixel_norm[j])
                _remove4(a_n, a_c, pad, j, 0, b0, nj)
                if wide:
                    _remove4(a_n, a_c, pad, j, 4, b0, nj)
        for e in range(ov_bounds[blk], ov_bounds[blk + 1]):
            j = ov_pix[e]
            b = np.int64(ov_bin[e])
            c = np.float64(ov_coef[e])
            x = np.float64(frame[j])
            ok = _valid(x, mask_negative, check_dummy, dummy, delta_dummy)
            y = x
            if ok and has_dark:
                d = np.float64(dark[j])
                ok = np.isfinite(d)
                y = x - d
            if ok:
                a_s[b] += c * y
                a_v[b] += c * c * max(x, 1.0)
            else:
                a_n[b] += c * np.float64(pixel_norm[j])
                a_c[b] += 1.0
