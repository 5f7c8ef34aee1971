r"""numba kernels of the fused CSR score attention (see :mod:`spexphormer.nn.csr_attention`).

All kernels run over node ranges in parallel (``prange``), never over edges, so every output row
is written by exactly one thread: no atomics, no scatter, and the result does not depend on the
thread count. The per-(type, head) parameter gradients are summed per fixed block of
destinations (``BLOCK`` nodes; the block count depends only on :math:`N`) and the blocks are then
added in order, so they are reproducible too.

Notation (per head): :math:`s_e = \langle q_i, k_j\rangle` for edge :math:`e = (j \to i)` of type
:math:`t` (``q`` arrives already scaled by :math:`1/\sqrt{d_h}`), :math:`u_e = (s_e a_t + b_t)/T`,
:math:`z_e = \mathrm{clamp}(u_e, \pm c)`, :math:`\alpha_e = \exp(z_e - c) / Z_i` with
:math:`Z_i = \sum_{e \to i} \exp(z_e - c)`, :math:`o_i = \sum_e \alpha_e v_j`.

Shifting by the clamp bound :math:`c` instead of the per-node maximum gives the same softmax
(any shift does) in one pass: every term lies in :math:`[e^{-2c}, 1]`, which float64 sums hold
exactly enough for :math:`c \le` ``MAX_CLAMP``. Rows are packed so that each edge reads one
node record at random: ``kv[j] = (k_j, v_j)`` on the destination side and
``rec[i] = (q_i, g_i, 1/Z_i, \langle g_i, o_i\rangle)`` on the source side (``g`` the gradient
of ``o``); everything per edge is recomputed from them, so nothing per edge is stored.

The kernels are compiled with ``fastmath``: the exponential, one per edge and pass, costs about
half as much (measured: 0.20 -> 0.08 CPU seconds per 5.1M exponentials); the sums may be
reassociated, which changes results only by rounding and does not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import spexphormer.utils.numba_threads  # noqa: F401  (before any parallel kernel)

#: Destinations per block of the parameter-gradient partial sums (fixed: reproducible sums).
BLOCK = 4096
#: Destinations per gather block: their neighbours' rows are first copied into a small buffer by a
#: plain gather loop, whose independent loads the CPU overlaps (on a graph of 1M nodes nearly
#: every row is a cache miss), then read from cache by the arithmetic.
GATHER = 128
#: Largest clamp bound of the one-pass softmax (exp(-2c) must stay a normal float64).
MAX_CLAMP = 300.0


@njit(cache=True, inline="always")
def _gather(table, index, lo, hi, buf):
    """``buf[e - lo] = table[index[e]]`` for ``e`` in ``[lo, hi)`` (rows of any width)."""
    H, w = table.shape[1], table.shape[2]
    for e in range(lo, hi):
        r = index[e]
        for h in range(H):
            for c in range(w):
                buf[e - lo, h, c] = table[r, h, c]


@njit(parallel=True, cache=True, fastmath=True)
def csr_forward(ptr, src, etype, q, kv, scale, bias, inv_temp, clamp, alpha, out, denom):
    """Fills ``alpha`` (E, H), ``out`` (N, H, d) and ``denom`` (N, H) = :math:`Z`."""
    n, H, d = q.shape
    for g in prange((n + GATHER - 1) // GATHER):
        i0, i1 = g * GATHER, min((g + 1) * GATHER, n)
        base = ptr[i0]
        rows = np.empty((ptr[i1] - base, H, 2 * d), kv.dtype)
        _gather(kv, src, base, ptr[i1], rows)
        for i in range(i0, i1):
            _forward_node(i, ptr[i], ptr[i + 1], base, rows, etype, q, scale, bias, inv_temp, clamp,
                          alpha, out, denom)


@njit(cache=True, inline="always", fastmath=True)
def _forward_node(i, lo, hi, base, rows, etype, q, scale, bias, inv_temp, clamp, alpha, out, denom):
    H, d = q.shape[1], q.shape[2]
    for h in range(H):
        for c in range(d):
            out[i, h, c] = 0.0
        total = 0.0
        for e in range(lo, hi):
            r, t = e - base, etype[e]
            s = 0.0
            for c in range(d):
                s += q[i, h, c] * rows[r, h, c]
            z = min(max((s * scale[t, h] + bias[t, h]) * inv_temp, -clamp), clamp)
            w = np.exp(z - clamp)
            alpha[e, h] = w
            total += w
            for c in range(d):
                out[i, h, c] += w * rows[r, h, d + c]
        if hi == lo:
            total = 1.0
        inv = 1.0 / total
        for e in range(lo, hi):
            alpha[e, h] *= inv
        for c in range(d):
            out[i, h, c] *= inv
        denom[i, h] = total


@njit(parallel=True, cache=True, fastmath=True)
def csr_backward_dst(ptr, src, etype, q, kv, scale, bias, inv_temp, clamp, rec, grad_q,
                     grad_scale_parts, grad_bias_parts):
    """Destination side of the backward pass: ``grad_q`` and per-block partial sums of the
    gradients of ``scale`` and ``bias``. ``rec`` as in the module docstring."""
    n, H, d = q.shape
    blocks = grad_scale_parts.shape[0]
    for b in prange(blocks):
        for g0 in range(b * BLOCK, min((b + 1) * BLOCK, n), GATHER):
            g1 = min(g0 + GATHER, (b + 1) * BLOCK, n)
            base = ptr[g0]
            rows = np.empty((ptr[g1] - base, H, 2 * d), kv.dtype)
            _gather(kv, src, base, ptr[g1], rows)
            for i in range(g0, g1):
                _backward_dst_node(i, ptr[i], ptr[i + 1], base, rows, etype, q, scale, bias, inv_temp,
                                   clamp, rec, grad_q, grad_scale_parts[b], grad_bias_parts[b])


@njit(cache=True, inline="always", fastmath=True)
def _backward_dst_node(i, lo, hi, base, kv, etype, q, scale, bias, inv_temp, clamp, rec, grad_q,
                       grad_scale_part, grad_bias_part):
    H, d = q.shape[1], q.shape[2]
    for h in range(H):
        inv_total, g_dot_o = rec[i, h, 2 * d], rec[i, h, 2 * d + 1]
        for c in range(d):
            grad_q[i, h, c] = 0.0
        for e in range(lo, hi):
            j, t = e - base, etype[e]
            s = 0.0
            g_dot_v = 0.0
            for c in range(d):
                s += q[i, h, c] * kv[j, h, c]
                g_dot_v += rec[i, h, d + c] * kv[j, h, d + c]
            u = (s * scale[t, h] + bias[t, h]) * inv_temp
            if u < -clamp or u > clamp:  # torch.clamp passes the gradient on [-c, c]
                continue
            a = np.exp(u - clamp) * inv_total
            du = a * (g_dot_v - g_dot_o) * inv_temp  # softmax Jacobian-vector product
            ds = du * scale[t, h]
            grad_scale_part[t, h] += du * s
            grad_bias_part[t, h] += du
            for c in range(d):
                grad_q[i, h, c] += ds * kv[j, h, c]


@njit(parallel=True, cache=True, fastmath=True)
def csr_backward_src(src_ptr, src_dst, src_type, kv, scale, bias, inv_temp, clamp, rec,
                     grad_k, grad_v):
    """Source side of the backward pass: ``grad_k[j]`` and ``grad_v[j]`` from the edges leaving
    ``j`` (destinations ``src_dst[src_ptr[j]:src_ptr[j+1]]``, types ``src_type``)."""
    n, H, d = grad_k.shape
    for g in prange((n + GATHER - 1) // GATHER):
        j0, j1 = g * GATHER, min((g + 1) * GATHER, n)
        base = src_ptr[j0]
        rows = np.empty((src_ptr[j1] - base, H, rec.shape[2]), rec.dtype)
        _gather(rec, src_dst, base, src_ptr[j1], rows)
        for j in range(j0, j1):
            _backward_src_node(j, src_ptr[j], src_ptr[j + 1], base, rows, src_type, kv, scale, bias,
                               inv_temp, clamp, grad_k, grad_v)


@njit(cache=True, inline="always", fastmath=True)
def _backward_src_node(j, lo, hi, base, rec, src_type, kv, scale, bias, inv_temp, clamp, grad_k, grad_v):
    H, d = grad_k.shape[1], grad_k.shape[2]
    for h in range(H):
        for c in range(d):
            grad_k[j, h, c] = 0.0
            grad_v[j, h, c] = 0.0
    for p in range(lo, hi):
        i, t = p - base, src_type[p]
        for h in range(H):
            inv_total, g_dot_o = rec[i, h, 2 * d], rec[i, h, 2 * d + 1]
            s = 0.0
            g_dot_v = 0.0
            for c in range(d):
                s += rec[i, h, c] * kv[j, h, c]
                g_dot_v += rec[i, h, d + c] * kv[j, h, d + c]
            u = (s * scale[t, h] + bias[t, h]) * inv_temp
            z = min(max(u, -clamp), clamp)
            a = np.exp(z - clamp) * inv_total
            du = 0.0
            if -clamp <= u <= clamp:
                du = a * (g_dot_v - g_dot_o) * inv_temp
            ds = du * scale[t, h]
            for c in range(d):
                grad_k[j, h, c] += ds * rec[i, h, c]
                grad_v[j, h, c] += a * rec[i, h, d + c]


@njit(parallel=True, cache=True)
def fill_by_source(ptr, src, etype, src_ptr, bounds, src_dst, src_type):
    """The destination-grouped edges regrouped by source, stably, into ``src_dst`` and
    ``src_type`` (E), given the source offsets ``src_ptr`` and part ``bounds`` of
    :func:`spexphormer.graph.csr.bucket_offsets`. Part ``p`` owns the sources of one node range;
    no int64 permutation of the edges is made."""
    n, parts = ptr.shape[0] - 1, bounds.shape[0] - 1
    fill = src_ptr[:-1].copy()
    for p in prange(parts):
        lo, hi = bounds[p], bounds[p + 1]
        for i in range(n):
            for e in range(ptr[i], ptr[i + 1]):
                j = src[e]
                if lo <= j < hi:
                    pos = fill[j]
                    src_dst[pos] = i
                    src_type[pos] = etype[e]
                    fill[j] = pos + 1


@njit(parallel=True, cache=True)
def grouped_as(ptr, dst, offset):
    """Whether ``dst[ptr[i]:ptr[i+1]] == offset + i`` for every destination ``i``."""
    n = ptr.shape[0] - 1
    bad = 0
    for i in prange(n):
        for e in range(ptr[i], ptr[i + 1]):
            if dst[e] != offset + i:
                bad += 1
    return bad == 0
