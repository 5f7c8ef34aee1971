r"""Compiled per-node selection kernel behind :func:`~spexphormer.sampling.sample_neighbours`.

For node :math:`v` with in-edge positions :math:`e \in [\mathrm{ptr}_v, \mathrm{ptr}_{v+1})`,
each edge gets a key :math:`\kappa_e`, and the :math:`\min(k, d_v)` edges with the smallest
``(key, position)`` pairs are kept in increasing key order. Keys per mode:

* ``MODE_RESERVOIR``: :math:`\kappa_e = E_e / P_e` if :math:`P_e > 0`, else
  :math:`Z\,(1 + E_e)` with :math:`Z = 10^{200}`, far above any positive-score key
  (:math:`E \le 45` and :math:`P \ge 1.4 \cdot 10^{-45}` give keys below
  :math:`4 \cdot 10^{46}`), so zero-score edges are taken only to reach :math:`k`, uniformly.
  Here :math:`E_e = ` :func:`~spexphormer.sampling.rng.exponential` ``(key, e)`` is an
  :math:`\mathrm{Exp}(1)` variate, distributed as :math:`-\log U_e`.
* ``MODE_UNIFORM``: :math:`\kappa_e = E_e`.
* ``MODE_TOPK``: :math:`\kappa_e = -P_e` (ties broken by position, no randomness).

Per node, a first loop writes all :math:`d_v` keys to a buffer (a tight loop the CPU pipelines
well); a second keeps the best :math:`k` in a sorted buffer by insertion, comparing each key to
the current :math:`k`-th smallest (the expected number of insertions is
:math:`k(1 + \ln(d/k))`).

If :math:`k > d_v`, slots :math:`d_v, \ldots, k-1` hold extras drawn with replacement by inverse
CDF, :math:`\propto P` (reservoir, top-k; uniformly if :math:`\sum P = 0`) or uniformly (uniform).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

import spexphormer.utils.numba_threads  # noqa: F401  (before any parallel kernel)

from spexphormer.sampling.rng import exponential, uniform01

MODE_RESERVOIR = 0
MODE_UNIFORM = 1
MODE_TOPK = 2

_ZERO_SCORE_KEY = 1e200
_CHUNK = 2048  # nodes per parallel task (buffers are allocated once per chunk)


@njit(cache=True)
def _fill_keys(lo, hi, scores, mode, key_seed, kb):
    """Writes the keys of edges ``[lo, hi)`` to ``kb[:hi - lo]``; returns the number of
    invalid (negative or NaN) scores."""
    bad = 0
    if mode == MODE_TOPK:
        for i in range(hi - lo):
            p = np.float64(scores[lo + i])
            bad += not p >= 0.0
            kb[i] = -p
    elif mode == MODE_UNIFORM:
        for i in range(hi - lo):
            bad += not scores[lo + i] >= 0.0
            kb[i] = exponential(key_seed, lo + i)
    else:
        for i in range(hi - lo):
            p = np.float64(scores[lo + i])
            bad += not p >= 0.0
            e = exponential(key_seed, lo + i)
            kb[i] = e / p if p > 0.0 else _ZERO_SCORE_KEY * (1.0 + e)
    return bad


@njit(cache=True, inline="always")
def _insert(tk, tp, j, key, pos):
    """Inserts ``(key, pos)`` into the ascending ``tk[:j + 1]``, overwriting slot ``j``."""
    while j > 0 and tk[j - 1] > key:  # equal keys keep position order (pos increases)
        tk[j] = tk[j - 1]
        tp[j] = tp[j - 1]
        j -= 1
    tk[j] = key
    tp[j] = pos


@njit(cache=True)
def _select_smallest(lo, deg, cap, kb, tk, tp, out, v):
    """Writes the positions of the ``cap`` smallest keys of ``kb[:deg]`` to ``out[v, :cap]``,
    in increasing ``(key, position)`` order."""
    for i in range(cap):
        _insert(tk, tp, i, kb[i], lo + i)
    thresh = tk[cap - 1]
    for i in range(cap, deg):
        key = kb[i]
        if key < thresh:
            _insert(tk, tp, cap - 1, key, lo + i)
            thresh = tk[cap - 1]
    for j in range(cap):
        out[v, j] = tp[j]


@njit(cache=True)
def _draw_extras(v, lo, hi, scores, k, weighted, extra_seed, out):
    """Fills ``out[v, d:k]`` with edges of ``[lo, hi)`` drawn with replacement."""
    deg = hi - lo
    total = 0.0
    if weighted:
        for pos in range(lo, hi):
            total += max(np.float64(scores[pos]), 0.0)
    use_p = weighted and total > 0.0
    for j in range(deg, k):
        u = uniform01(extra_seed, v * k + j)
        if not use_p:
            out[v, j] = lo + min(int(u * deg), deg - 1)
            continue
        target = u * total
        acc = 0.0
        pick = -1
        for pos in range(lo, hi):
            p = np.float64(scores[pos])
            if p > 0.0:
                pick = pos  # last positive edge: the fallback for rounding at the top
                acc += p
                if acc > target:
                    break
        out[v, j] = pick


@njit(parallel=True, cache=True)
def select_kernel(ptr, scores, k, mode, key_seed, extra_seed, max_deg, out):
    """Fills ``out[v]`` (``k`` edge positions) for every node ``v``; see the module docstring.

    ``max_deg`` must be at least the largest in-degree. Returns the number of invalid
    (negative or NaN) scores; ``out`` is meaningless if it is not 0.
    """
    num_nodes = ptr.shape[0] - 1
    num_chunks = (num_nodes + _CHUNK - 1) // _CHUNK
    weighted = mode != MODE_UNIFORM
    bad = 0
    for c in prange(num_chunks):
        kb = np.empty(max_deg, np.float64)
        tk = np.empty(k, np.float64)
        tp = np.empty(k, np.int64)
        chunk_bad = 0
        for v in range(c * _CHUNK, min(num_nodes, (c + 1) * _CHUNK)):
            lo = ptr[v]
            deg = ptr[v + 1] - lo
            chunk_bad += _fill_keys(lo, lo + deg, scores, mode, key_seed, kb)
            cap = min(k, deg)
            _select_smallest(lo, deg, cap, kb, tk, tp, out, v)
            if cap < k:
                _draw_extras(v, lo, lo + deg, scores, k, weighted, extra_seed, out)
        bad += chunk_bad
    return bad
