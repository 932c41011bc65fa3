"""The configuration request and reply streams shared by the core, the router and the system.

A configuration request writes or reads one word of one memory (or register block) of a
target: ``write`` (1: write ``data``; 0: read), ``mem`` (which memory), ``addr`` (the word)
and ``data`` (the word written, ignored by a read). Every read is answered, in order, by one
reply carrying the word read, zero-extended to :data:`~spikefab.hdl.layouts.CFG_DATA_BITS`.
A write has no reply. The system's requests carry a ``target`` (a core, or
``Target.SYSTEM``) before the other fields; the core and the router take the same request
without it (``docs/contract.md`` 6.2 and 7).
"""

from __future__ import annotations

from amaranth.hdl import ShapeLike, unsigned
from amaranth.lib import data, stream
from spikefab.hdl.layouts import CFG_DATA_BITS

__all__ = ["cfg_reply_layout", "cfg_reply_signature", "cfg_request_layout", "cfg_request_signature"]


def cfg_request_layout(
    mem: ShapeLike, addr_bits: int, *, target_bits: int | None = None
) -> data.StructLayout:
    """Return the layout of a configuration request.

    Parameters
    ----------
    mem
        The shape of ``mem``: an enum of the target's memories, or a width when the request
        carries the memories of several kinds of target.
    addr_bits
        The width of ``addr``.
    target_bits
        The width of ``target``, the first field; ``None`` for a request without one.

    Raises
    ------
    ValueError
        If ``addr_bits`` or ``target_bits`` is not a positive integer.
    """
    if not isinstance(addr_bits, int) or addr_bits < 1:
        raise ValueError(f"addr_bits must be a positive integer, not {addr_bits!r}")
    fields = {}
    if target_bits is not None:
        if not isinstance(target_bits, int) or target_bits < 1:
            raise ValueError(f"target_bits must be a positive integer, not {target_bits!r}")
        fields["target"] = unsigned(target_bits)
    fields |= {
        "write": unsigned(1),
        "mem": mem,
        "addr": unsigned(addr_bits),
        "data": unsigned(CFG_DATA_BITS),
    }
    return data.StructLayout(fields)


def cfg_reply_layout() -> data.StructLayout:
    """Return the layout of a configuration reply: the word read."""
    return data.StructLayout({"data": unsigned(CFG_DATA_BITS)})


def cfg_request_signature(
    mem: ShapeLike, addr_bits: int, *, target_bits: int | None = None
) -> stream.Signature:
    """Return the stream signature of configuration requests (see :func:`cfg_request_layout`)."""
    return stream.Signature(cfg_request_layout(mem, addr_bits, target_bits=target_bits))


def cfg_reply_signature() -> stream.Signature:
    """Return the stream signature of configuration replies (see :func:`cfg_reply_layout`)."""
    return stream.Signature(cfg_reply_layout())
