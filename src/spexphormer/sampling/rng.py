r"""Counter-based random numbers for the samplers.

Every random number the samplers use is a pure function of a 64-bit *key* (derived from the
user's seed, the layer and the epoch) and a *counter* (an edge position, or a node and slot for
the extra draws):

.. math::
    U(\mathrm{key}, c) = \bigl(\lfloor h / 2^{11} \rfloor + \tfrac12\bigr)\, 2^{-53},
    \qquad h = \mathrm{mix}\bigl(\mathrm{key} + (c + 1)\,\gamma \bmod 2^{64}\bigr),

where :math:`\mathrm{mix}` is the SplitMix64 finaliser and :math:`\gamma` the 64-bit golden
ratio: :math:`h` is output :math:`c + 1` of a SplitMix64 generator seeded with ``key`` (keys from
:func:`derive_seed` are pseudo-random, so two streams overlap with probability about
:math:`2E / 2^{64}`). :math:`U` lies strictly inside :math:`(0, 1)`, so :math:`-\log U` is finite
and positive. Because nothing depends on a sequential generator state, the results do not depend on the order
in which nodes are visited, hence not on the number of numba threads.

:func:`exponential` turns the same hash into an :math:`\mathrm{Exp}(1)` variate with the exact
ziggurat method of Marsaglia & Tsang (2000), 256 layers: about 99% of draws cost one table look-up
and one multiplication instead of a logarithm; the rest are resolved by rejection with further
numbers from the hash chain :math:`h_{t+1} = \mathrm{mix}(h_t + \gamma)`.

:func:`derive_seed` is the same mixer in plain Python, used to turn ``(seed, epoch, layer, ...)``
into independent keys.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["derive_seed", "exponential", "exponential_array", "uniform01", "uniform01_array"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB

# numba freezes module globals as compile-time constants.
_U_GOLDEN = np.uint64(_GOLDEN)
_U_MUL1 = np.uint64(_MUL1)
_U_MUL2 = np.uint64(_MUL2)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_LOW8 = np.uint64(255)
_TWO_53 = 9007199254740992.0
_TWO_M53 = 1.0 / _TWO_53


def _mix64_py(x: int) -> int:
    """SplitMix64 finaliser on a Python int (arithmetic modulo 2**64)."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * _MUL1) & _MASK
    x = ((x ^ (x >> 27)) * _MUL2) & _MASK
    return x ^ (x >> 31)


def derive_seed(seed: int, *parts: int) -> int:
    r"""Derives an independent 63-bit key from a seed and a tuple of integers.

    .. math::
        h_0 = \mathrm{mix}(s + \gamma), \qquad
        h_{i+1} = \mathrm{mix}\bigl(\mathrm{mix}(h_i + \gamma) + (p_i + 1)\,\gamma\bigr)
        \pmod{2^{64}},

    returned as :math:`h_n \gg 1` so that it fits a signed 64-bit integer.

    Args:
        seed (int): Any Python integer (negative values are taken modulo :math:`2^{64}`).
        *parts (int): Further integers, e.g. ``epoch, layer``; order matters.

    Returns:
        int: A key in :math:`[0, 2^{63})`.
    """
    h = _mix64_py(int(seed) + _GOLDEN)
    for p in parts:
        h = _mix64_py(_mix64_py(h + _GOLDEN) + (int(p) + 1) * _GOLDEN)
    return h >> 1


def _ziggurat_tables():
    r"""Exponential ziggurat tables (Marsaglia & Tsang 2000, 256 layers) for 53-bit draws.

    Layer :math:`i` is accepted at once when :math:`j < \mathrm{ke}_i` and then returns
    :math:`j \cdot \mathrm{we}_i`, for :math:`j` uniform in :math:`[0, 2^{53})`; ``fe`` holds
    :math:`e^{-x_i}` at the layer edges.
    """
    r, area = 7.697117470131487, 3.949659822581572e-3
    ke = np.zeros(256, np.uint64)
    we = np.zeros(256, np.float64)
    fe = np.zeros(256, np.float64)
    q = area / math.exp(-r)
    ke[0] = int(r / q * _TWO_53)
    we[0], we[255] = q / _TWO_53, r / _TWO_53
    fe[0], fe[255] = 1.0, math.exp(-r)
    x, prev = r, r
    for i in range(254, 0, -1):
        x = -math.log(area / x + math.exp(-x))
        ke[i + 1] = int(x / prev * _TWO_53)
        prev = x
        fe[i] = math.exp(-x)
        we[i] = x / _TWO_53
    return r, ke, we, fe


_ZIG_R, _ZIG_KE, _ZIG_WE, _ZIG_FE = _ziggurat_tables()


@njit(cache=True, inline="always")
def _mix64(x):
    x = (x ^ (x >> _S30)) * _U_MUL1
    x = (x ^ (x >> _S27)) * _U_MUL2
    return x ^ (x >> _S31)


@njit(cache=True, inline="always")
def uniform01(key, counter):
    r"""Uniform number in :math:`(0, 1)` for a ``(key, counter)`` pair (numba-compiled).

    Args:
        key (int): 64-bit key, e.g. from :func:`derive_seed`.
        counter (int): Non-negative 64-bit counter (edge position, or node and slot).

    Returns:
        float: :math:`U(\mathrm{key}, \mathrm{counter}) \in (0, 1)`, a multiple of
        :math:`2^{-54}`.
    """
    return _u01(_mix64(np.uint64(key) + np.uint64(counter) * _U_GOLDEN + _U_GOLDEN))


@njit(cache=True, inline="always")
def _u01(h):
    return (np.float64(h >> _S11) + 0.5) * _TWO_M53


@njit(cache=True)
def _exponential_slow(h, layer, j):
    """Ziggurat rejection path (about 1% of draws); ``h`` seeds the hash chain."""
    for _ in range(64):
        if layer == 0:  # tail beyond r: r + Exp(1)
            h = _mix64(h + _U_GOLDEN)
            return _ZIG_R - np.log(_u01(h))
        x = np.float64(j) * _ZIG_WE[layer]
        h = _mix64(h + _U_GOLDEN)
        fe_lo, fe_hi = _ZIG_FE[layer], _ZIG_FE[layer - 1]
        if fe_lo + _u01(h) * (fe_hi - fe_lo) < np.exp(-x):
            return x
        h = _mix64(h + _U_GOLDEN)
        layer = np.int64(h & _LOW8)
        j = h >> _S11
        if j < _ZIG_KE[layer]:
            return np.float64(j) * _ZIG_WE[layer]
    return -np.log(_u01(h))  # unreachable in practice: 64 rejections have probability < 1e-120


@njit(cache=True, inline="always")
def exponential(key, counter):
    r"""An :math:`\mathrm{Exp}(1)` variate for a ``(key, counter)`` pair (numba-compiled).

    Exact ziggurat sampling from the same 64-bit hash as :func:`uniform01`: the low 8 bits pick
    the layer, the high 53 bits the position in it.

    Args:
        key (int): 64-bit key, e.g. from :func:`derive_seed`.
        counter (int): Non-negative 64-bit counter.

    Returns:
        float: :math:`E \ge 0` with :math:`\Pr[E > x] = e^{-x}` (up to the 53-bit resolution).
    """
    h = _mix64(np.uint64(key) + np.uint64(counter) * _U_GOLDEN + _U_GOLDEN)
    layer = np.int64(h & _LOW8)
    j = h >> _S11
    if j < _ZIG_KE[layer]:
        return np.float64(j) * _ZIG_WE[layer]
    return _exponential_slow(h, layer, j)


@njit(cache=True)
def exponential_array(key, counters):
    """Vectorised :func:`exponential` over an int64 array of counters (for tests and tools).

    Shapes:
        - **input:** counters :math:`(M,)` int64
        - **output:** :math:`(M,)` float64
    """
    out = np.empty(counters.shape[0], np.float64)
    for i in range(counters.shape[0]):
        out[i] = exponential(key, counters[i])
    return out


@njit(cache=True)
def uniform01_array(key, counters):
    """Vectorised :func:`uniform01` over an int64 array of counters (for tests and tools).

    Shapes:
        - **input:** counters :math:`(M,)` int64
        - **output:** :math:`(M,)` float64 in :math:`(0, 1)`
    """
    out = np.empty(counters.shape[0], np.float64)
    for i in range(counters.shape[0]):
        out[i] = uniform01(key, counters[i])
    return out
