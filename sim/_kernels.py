"""The numba kernels of the golden model: whole steps of a network, compiled.

:func:`advance` runs consecutive steps of :class:`~spikefab.sim.golden.GoldenModel` with the
arithmetic of ``docs/contract.md`` (sections 2 to 5) in ``int64``, one neuron and one synaptic
event at a time; :func:`advance_parallel` is the same loop with the neurons split into blocks
that run on several threads (``docs/golden.md`` says why its results are those of
:func:`advance` bit for bit). They are the fast path of the golden model and must give, bit for
bit, what the numpy path gives; ``tests/sim/test_fast_path.py`` and
``tests/sim/test_golden_threads.py`` compare them.

Importing this module imports numba (an optional dependency: ``pip install "spikefab[fast]"``).
The kernels are compiled on their first call and cached on disk (``cache=True``), so later
processes only load them. The tables are compact (``docs/golden.md``): a synapse is an
``int32`` ring offset and an ``int16`` value, the dendrite ring is ``int32`` when no neuron can
receive a sum beyond its range (else ``int64``), neuron state is ``int64``. The contract's
constants are passed in :data:`CONSTS` rather than read as globals: numba's on-disk cache is
keyed by this file only, and a change of ``hdl/params.py`` must not be hidden by a stale cache.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from spikefab.hdl import params as P

__all__ = [
    "CONSTS",
    "NEURON_ROWS",
    "PLASTIC_COLUMNS",
    "advance",
    "advance_parallel",
    "counting_order",
    "gather_synapses",
]

#: The contract's constants, in the order the kernel reads them.
CONSTS = np.array(
    [
        P.DECAY_SHIFT,
        P.ACT_SHIFT,
        P.INPUT_MIN,
        P.INPUT_MAX,
        P.V_MIN,
        P.V_MAX,
        P.UV_BITS,
        P.TRACE_MAX,
        P.LFSR_TAPS,
        P.LFSR_SHIFTS_PER_STEP,
    ],
    dtype=np.int64,
)

#: Rows of the per-neuron constant table (shape ``(6, n)``).
NEURON_ROWS = ("ku", "kv", "theta", "bias", "refractory", "subtract")

#: Columns of the per-projection table of plastic projections (shape ``(P, 21)``).
PLASTIC_COLUMNS = (
    "pre_off",  # first global id of the pre population
    "post_off",  # first global id of the post population
    "n_pre",
    "n_post",
    "x_start",  # first pre trace in the concatenated x
    "y_start",  # first post trace (and LFSR) in the concatenated y and lfsr
    "syn_lo",  # first synapse in the concatenated plastic synapse arrays
    "syn_hi",
    "pre_ptr",  # first of the n_pre + 1 pointers of the by-pre synapse lists
    "post_ptr",  # first of the n_post + 1 pointers of the by-post synapse lists
    "a_plus",
    "a_minus",
    "kx",  # 4096 - d_pre
    "ky",  # 4096 - d_post
    "bump_pre",
    "bump_post",
    "shift",
    "w_min",
    "w_max",
    "stochastic",
    "weight_exp",
)


#: Spikes whose synapse lists are fetched into the cache ahead of their delivery.
PREFETCH_AHEAD = 6


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask the CPU to bring ``arr[idx]`` into its caches (LLVM's ``prefetch``), without
    waiting for it."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [args[1]], wraparound=False, boundscheck=False
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # a read, high locality, into the data cache
        flags = [ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        builder.call(fn, [builder.bitcast(ptr, i8p), *flags])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@njit(cache=True, nogil=True)
def _decay(x: int, k: int, shift: int, mask: int) -> int:
    """``sign(x) * ((|x| * k) >> shift)``: the product divided by ``2**shift``, truncated.

    For ``k >= 0`` the product ``p = x * k`` has the sign of ``x``, and truncating ``p / 2**shift``
    toward zero is ``(p + (mask if p < 0 else 0)) >> shift`` with an arithmetic shift; it is
    written without a branch, as the sign of ``p`` is unpredictable.
    """
    p = x * k
    return (p + ((p >> 63) & mask)) >> shift


@njit(cache=True, nogil=True)
def _update(acc, u, v, ref, ku, kv, theta, bias, refractory, sub, spiked, consts):
    """The LIF update of contract 2.3 for one range of neurons; ``acc`` is read and cleared.

    ``acc`` is the neurons' slot of the dendrite ring (``int32`` or ``int64``), so that the
    input phase (read the slot, clear it) and the update are one pass. Written without
    branches and over slices that start at 0 (so that the indices need no check for negative
    values), which lets LLVM vectorize the loop.
    """
    shift12 = consts[0]
    mask12 = (1 << shift12) - 1
    act_shift = consts[1]
    in_lo, in_hi = consts[2], consts[3]
    v_lo, v_hi = consts[4], consts[5]
    half24 = 1 << (consts[6] - 1)
    mask24 = (1 << consts[6]) - 1
    for i in range(u.size):
        a = min(max(np.int64(acc[i]), in_lo), in_hi)
        acc[i] = 0
        ui = _decay(u[i], ku[i], shift12, mask12) + (a << act_shift)
        ui = ((ui + half24) & mask24) - half24
        u[i] = ui
        vi = _decay(v[i], kv[i], shift12, mask12) + ui + bias[i]
        vi = min(max(vi, v_lo), v_hi)
        r = ref[i]
        th = theta[i]
        free = r == 0
        spike = free & (vi > th)
        # refractory: v holds and ref counts down; a spike resets v and ref
        v[i] = (vi - th) * sub[i] if spike else (vi if free else v[i])
        ref[i] = refractory[i] if spike else max(r - 1, 0)
        spiked[i] = spike


@njit(cache=True, nogil=True)
def _learn(spiked, syn_val, pl, px, py, plfsr, pw, psyn, pptr, porder, consts):
    """The learning phase of one step for every plastic projection (contract 5.2)."""
    shift12 = consts[0]
    mask12 = (1 << shift12) - 1
    trace_max = consts[7]
    taps = consts[8]
    n_shifts = consts[9]
    for p in range(pl.shape[0]):
        pre_off, post_off = pl[p, 0], pl[p, 1]
        n_pre, n_post = pl[p, 2], pl[p, 3]
        xs, ys = pl[p, 4], pl[p, 5]
        pre_ptr, post_ptr = pl[p, 8], pl[p, 9]
        a_plus, a_minus = pl[p, 10], pl[p, 11]
        kx, ky = pl[p, 12], pl[p, 13]
        bump_pre, bump_post = pl[p, 14], pl[p, 15]
        sh = pl[p, 16]
        w_min, w_max = pl[p, 17], pl[p, 18]
        stochastic = pl[p, 19] != 0
        wexp = pl[p, 20]
        rmask = (1 << sh) - 1
        half = (1 << sh) >> 1
        # 1. decay the traces, advance the LFSRs
        for i in range(xs, xs + n_pre):
            px[i] = _decay(px[i], kx, shift12, mask12)
        for j in range(ys, ys + n_post):
            py[j] = _decay(py[j], ky, shift12, mask12)
        if stochastic:
            for j in range(ys, ys + n_post):
                s = plfsr[j]
                for _ in range(n_shifts):
                    s = (s >> 1) ^ ((s & 1) * taps)
                plfsr[j] = s
        # 2. weight changes: synapses of spiking pre neurons (with or without a post spike),
        # then synapses of spiking post neurons whose pre neuron did not spike
        for i in range(n_pre):
            if spiked[pre_off + i] == 0:
                continue
            xi = px[xs + i]
            for e in range(pptr[pre_ptr + i], pptr[pre_ptr + i + 1]):
                k = porder[0, e]
                j = psyn[1, k]
                num = -a_minus * py[ys + j]
                if spiked[post_off + j] != 0:
                    num += a_plus * xi
                rnd = (plfsr[ys + j] & rmask) if stochastic else half
                w = pw[k] + ((num + rnd) >> sh)
                w = min(max(w, w_min), w_max)
                pw[k] = w
                syn_val[psyn[2, k]] = w << wexp
        for j in range(n_post):
            if spiked[post_off + j] == 0:
                continue
            rnd = (plfsr[ys + j] & rmask) if stochastic else half
            for e in range(pptr[post_ptr + j], pptr[post_ptr + j + 1]):
                k = porder[1, e]
                i = psyn[0, k]
                if spiked[pre_off + i] != 0:
                    continue
                w = pw[k] + ((a_plus * px[xs + i] + rnd) >> sh)
                w = min(max(w, w_min), w_max)
                pw[k] = w
                syn_val[psyn[2, k]] = w << wexp
        # 3. bump the traces of this step's spikes
        for i in range(n_pre):
            if spiked[pre_off + i] != 0:
                px[xs + i] = min(px[xs + i] + bump_pre, trace_max)
        for j in range(n_post):
            if spiked[post_off + j] != 0:
                py[ys + j] = min(py[ys + j] + bump_post, trace_max)


@njit(cache=True, nogil=True)
def counting_order(key, n_keys):
    """Sort ``key`` (integers in ``0 .. n_keys - 1``) stably, by counting.

    Returns
    -------
    tuple of arrays
        ``order`` (``key[order]`` is sorted, equal keys in their original order) and ``ptr``
        (``n_keys + 1`` pointers: key ``k`` is at ``order[ptr[k] : ptr[k + 1]]``).
    """
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    for j in range(key.size):
        ptr[key[j] + 1] += 1
    for k in range(n_keys):
        ptr[k + 1] += ptr[k]
    fill = ptr[:-1].copy()
    order = np.empty(key.size, dtype=np.int64)
    for j in range(key.size):
        k = key[j]
        order[fill[k]] = j
        fill[k] += 1
    return order, ptr


@njit(cache=True, nogil=True)
def gather_synapses(order, post, delay, val, reach, n, off, out_val):
    """Fill the kernel's synapse table in ``order`` and return the largest sum of ``reach``
    over the incoming synapses of one neuron.

    ``off[j] = delay[o] * n + post[o]`` and ``out_val[j] = val[o]`` for ``o = order[j]``.
    """
    total = np.zeros(n, dtype=np.int64)
    for j in range(order.size):
        o = order[j]
        off[j] = delay[o] * n + post[o]
        out_val[j] = val[o]
        total[post[o]] += reach[o]
    return total.max() if n else 0


@njit(cache=True, nogil=True)
def _block(
    b, t, deliver, update, flat, n, ids, e_lo, e_hi, syn_ptr, syn_off, syn_val,
    upd, upd_ptr, u, v, ref, neuron, spiked, consts,
):  # fmt: skip
    """The work of block ``b`` of neurons: deliver the spikes of step ``t - 1`` to its
    neurons, then update its neurons for step ``t``.

    Block ``b`` writes only the ring columns, state and spike flags of its own neurons, and
    its synapses (``syn_ptr[b]``) are those whose target is one of them, so blocks never
    write the same memory. The events of a step reach a ring cell in the order of the spiking
    ids and, for one id, of the synapse table; integer addition makes the sum the same in any
    order, and no sum leaves the ring's range (``docs/golden.md``).
    """
    dn = flat.size
    D = dn // max(n, 1)
    if deliver:
        # unsigned indices: numba then leaves out the test for negative ones, which takes
        # about half the time of an event
        row = np.uint64(((t - 1) % D) * n)
        udn = np.uint64(dn)
        ptr = syn_ptr[b]
        for e in range(e_lo, e_hi):
            # the synapse lists of a large network are in memory, not in the caches: those of
            # a spike a few ahead are fetched while this one's are delivered (and the pointers
            # to the lists of a spike twice as far ahead)
            if e + 2 * PREFETCH_AHEAD < e_hi:
                _prefetch(ptr, ids[e + 2 * PREFETCH_AHEAD])
            if e + PREFETCH_AHEAD < e_hi:
                j = ids[e + PREFETCH_AHEAD]
                lo, hi = np.uint64(ptr[j]), np.uint64(ptr[j + 1])
                for q in range(lo, hi, np.uint64(64 // syn_off.itemsize)):
                    _prefetch(syn_off, q)
                for q in range(lo, hi, np.uint64(64 // syn_val.itemsize)):
                    _prefetch(syn_val, q)
            i = ids[e]
            for k in range(np.uint64(ptr[i]), np.uint64(ptr[i + 1])):
                w = row + np.uint64(syn_off[k])
                if w >= udn:
                    w -= udn
                flat[w] += syn_val[k]
    if update:
        row = (t % D) * n
        for r in range(upd_ptr[b], upd_ptr[b + 1]):
            lo, hi = upd[r, 0], upd[r, 1]
            _update(
                flat[row + lo : row + hi],
                u[lo:hi],
                v[lo:hi],
                ref[lo:hi],
                neuron[0, lo:hi],
                neuron[1, lo:hi],
                neuron[2, lo:hi],
                neuron[3, lo:hi],
                neuron[4, lo:hi],
                neuron[5, lo:hi],
                spiked[lo:hi],
                consts,
            )


@njit(cache=True, nogil=True)
def _serial(
    t, s, learn, update, n, spiked_prev, p_lo, p_hi, spiked, src_ptr, src_ids, src_base,
    syn_val, pl, px, py, plfsr, pw, psyn, pptr, porder, out_ids, pos, counts, count_base,
    probe, probe_idx, probe_out, u, v, consts,
):  # fmt: skip
    """What follows the blocks at step ``t`` (the ``s``-th of the call), on one thread.

    Learning of step ``t - 1`` (after its delivery, which the blocks just did), then the
    sources' spikes of step ``t``, the spiking ids of step ``t`` in increasing order (eight
    flags are tested at once) and the probes. Returns the number of spikes of step ``t``.
    """
    if learn and pl.shape[0] > 0:
        _learn(spiked_prev, syn_val, pl, px, py, plfsr, pw, psyn, pptr, porder, consts)
    for e in range(p_lo, p_hi):
        spiked_prev[out_ids[e]] = 0
    if not update:
        return 0
    for e in range(src_ptr[src_base + s], src_ptr[src_base + s + 1]):
        spiked[src_ids[e]] = 1
    words = spiked.view(np.uint64)
    c = 0
    for word in range(words.size):
        if words[word] != 0:
            for i in range(8 * word, 8 * word + 8):
                if spiked[i] != 0:
                    out_ids[pos + c] = i
                    c += 1
    counts[count_base + s] = c
    for q in range(probe.shape[0]):
        if t % probe[q, 2] == 0:
            for e in range(probe[q, 0], probe[q, 1]):
                g = probe_idx[0, e]
                probe_out[s, e] = u[g] if probe_idx[1, e] == 0 else v[g]
    return c


@njit(cache=True, nogil=True)
def advance(
    t0, n_steps, ring, u, v, ref, neuron, upd, upd_ptr, consts, src_ptr, src_ids, src_base,
    syn_ptr, syn_off, syn_val, pl, px, py, plfsr, pw, psyn, pptr, porder, spiked, out_ids,
    out_pos, counts, count_base, probe, probe_idx, probe_out,
):  # fmt: skip
    """Run steps ``t0 .. t0 + n_steps - 1`` (contract 4.1) and record their spikes.

    Each step is one pass over the blocks of neurons (:func:`_block`: the delivery of the
    previous step's spikes, then the input and update phases of this step), then the serial
    part (:func:`_serial`: the learning phase of the previous step, this step's spike list
    and probes). The delivery and learning of the last step close the call, so that between
    calls the state is that of contract 4.1 after a whole step.

    Parameters
    ----------
    t0, n_steps
        First step and number of steps.
    ring
        ``(D, n)`` dendrite ring: ``ring[s, i]`` is the exact sum due at neuron ``i`` at the
        next step ``t`` with ``t mod D = s``.
    u, v, ref
        State of every neuron (global order), updated in place.
    neuron
        ``(6, n)`` per-neuron constants, rows :data:`NEURON_ROWS`: ``4096 - (du + 1)``,
        ``4096 - dv``, ``vth << 6``, ``bias_mant << bias_exp``, ``refractory``, 1 for reset by
        subtraction.
    upd, upd_ptr
        ``(R, 2)`` ranges ``[lo, hi)`` of global ids of LIF neurons; those of block ``b`` are
        rows ``upd_ptr[b] .. upd_ptr[b + 1] - 1``.
    consts
        :data:`CONSTS`.
    src_ptr, src_ids, src_base
        Spikes of the sources: those of step ``t0 + s`` are ``src_ids[src_ptr[src_base + s] :
        src_ptr[src_base + s + 1]]`` (global ids).
    syn_ptr, syn_off, syn_val
        Synapses by block of targets and pre neuron: those of neuron ``i`` onto block ``b``
        are ``syn_ptr[b, i] .. syn_ptr[b, i + 1] - 1``; ``syn_off = delay * n + post``
        (``int32``, or ``int64`` for a ring of ``2**31`` cells or more); ``syn_val = w <<
        weight_exp`` (``int16``).
    pl, px, py, plfsr, pw, psyn, pptr, porder
        Plastic projections: table (columns :data:`PLASTIC_COLUMNS`), concatenated traces,
        LFSRs and weight mantissas; ``psyn`` rows are the local pre index, local post index and
        index in ``syn_val`` of every plastic synapse; ``porder`` rows are the plastic
        synapses sorted by pre and by post, delimited by the pointers in ``pptr``.
    spiked
        ``(2, m)`` ``uint8`` scratch of zeros (left as zeros), ``m >= n`` a multiple of 8: the
        spike flags of a step and of the one before.
    out_ids, out_pos
        Spiking global ids are written in increasing order per step from ``out_ids[out_pos]``.
    counts, count_base
        ``counts[count_base + s]`` receives the number of spikes of step ``t0 + s``.
    probe, probe_idx, probe_out
        ``(Q, 3)`` probes ``[lo, hi, every]`` over the columns of ``probe_idx`` (rows: global
        id, 0 for ``u`` or 1 for ``v``); after step ``t0 + s`` with ``(t0 + s) % every == 0``,
        ``probe_out[s, lo:hi]`` receives the probed values.

    Returns
    -------
    tuple of int
        The number of steps run (fewer than ``n_steps`` when ``out_ids`` could not hold
        another ``n`` ids) and the new ``out_pos``.
    """
    D, n = ring.shape
    flat = ring.reshape(D * n)
    pos = p_lo = p_hi = out_pos
    done = cur = 0
    while True:
        update = done < n_steps and pos + n <= out_ids.shape[0]
        if not update and done == 0:
            return 0, pos
        t = t0 + done
        for b in range(syn_ptr.shape[0]):
            _block(
                b, t, done > 0, update, flat, n, out_ids, p_lo, p_hi, syn_ptr, syn_off,
                syn_val, upd, upd_ptr, u, v, ref, neuron, spiked[cur], consts,
            )  # fmt: skip
        c = _serial(
            t, done, done > 0, update, n, spiked[1 - cur], p_lo, p_hi, spiked[cur], src_ptr,
            src_ids, src_base, syn_val, pl, px, py, plfsr, pw, psyn, pptr, porder, out_ids,
            pos, counts, count_base, probe, probe_idx, probe_out, u, v, consts,
        )  # fmt: skip
        if not update:
            return done, pos
        p_lo, p_hi = pos, pos + c
        pos += c
        done += 1
        cur = 1 - cur


@njit(cache=True, nogil=True, parallel=True)
def advance_parallel(
    t0, n_steps, ring, u, v, ref, neuron, upd, upd_ptr, consts, src_ptr, src_ids, src_base,
    syn_ptr, syn_off, syn_val, pl, px, py, plfsr, pw, psyn, pptr, porder, spiked, out_ids,
    out_pos, counts, count_base, probe, probe_idx, probe_out, syn_count, min_work,
):  # fmt: skip
    """:func:`advance` with the blocks of neurons on numba's threads (``prange``).

    Same arguments, and ``syn_count`` (outgoing synapses of every neuron) and ``min_work``:
    a step whose LIF neurons and synaptic events to deliver number fewer than ``min_work``
    runs its blocks one after the other on the calling thread, as starting the threads would
    cost more than it saves. Same results bit for bit whatever the number of threads and
    ``min_work``: the blocks write disjoint memory, and the serial part runs between them on
    one thread.
    """
    D, n = ring.shape
    flat = ring.reshape(D * n)
    pos = p_lo = p_hi = out_pos
    done = cur = 0
    n_lif = 0
    for r in range(upd.shape[0]):
        n_lif += upd[r, 1] - upd[r, 0]
    events = 0
    while True:
        update = done < n_steps and pos + n <= out_ids.shape[0]
        if not update and done == 0:
            return 0, pos
        t = t0 + done
        sp = spiked[cur]
        if (n_lif if update else 0) + events < min_work:
            for b in range(syn_ptr.shape[0]):
                _block(
                    b, t, done > 0, update, flat, n, out_ids, p_lo, p_hi, syn_ptr, syn_off,
                    syn_val, upd, upd_ptr, u, v, ref, neuron, sp, consts,
                )  # fmt: skip
        else:
            for b in prange(syn_ptr.shape[0]):
                _block(
                    b, t, done > 0, update, flat, n, out_ids, p_lo, p_hi, syn_ptr, syn_off,
                    syn_val, upd, upd_ptr, u, v, ref, neuron, sp, consts,
                )  # fmt: skip
        c = _serial(
            t, done, done > 0, update, n, spiked[1 - cur], p_lo, p_hi, sp, src_ptr,
            src_ids, src_base, syn_val, pl, px, py, plfsr, pw, psyn, pptr, porder, out_ids,
            pos, counts, count_base, probe, probe_idx, probe_out, u, v, consts,
        )  # fmt: skip
        if not update:
            return done, pos
        p_lo, p_hi = pos, pos + c
        events = 0
        for e in range(p_lo, p_hi):
            events += syn_count[out_ids[e]]
        pos += c
        done += 1
        cur = 1 - cur
