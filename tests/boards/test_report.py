"""Block RAM per entry (`boards/report.py`), against counts by hand of each board's memories.

The counts follow the cores' memory shapes (``hdl/core.py``, ``hdl/learning.py``) and the
block RAM configurations of the families: the ECP5's DP16KD (18432 bits: 16384 x 1, 8192 x 2,
4096 x 4, 2048 x 9, 1024 x 18, 512 x 36), the iCE40's SB_RAM40_4K (4096 bits: 2048 x 2 ..
256 x 16) and the UP5K's SPRAM (16384 x 16).
"""

from __future__ import annotations

import pytest
from spikefab.boards import BOARDS, get_board
from spikefab.boards.build import BuildReport
from spikefab.boards.report import bits_per_entry, core_memories
from spikefab.hdl.layouts import CoreConfig

DP16KD, RAM4K, SPRAM = 18432, 4096, 16384 * 16


def blocks_of(family: str, core: CoreConfig, merged_banks: bool | None = None) -> dict:
    return {
        m.name: (m.kind, m.blocks)
        for m in core_memories(core, family, merged_banks)
        if m.kind not in ("LUT RAM", "flip-flops")
    }


def test_a_core_of_1024_neurons_by_hand():
    """A learning core of 1024 neurons in block RAM (the ULX3S holds three without SDRAM)."""
    core = CoreConfig(neurons=1024, axons=1024, synapses=16384, delay_slots=16, learning=True)
    # dense memories: each word is its own fields
    assert blocks_of("ecp5", core) == {
        "syn_bank": ("DP16KD", 24),  # 25 bits x 16384: 3 x 8 blocks of 2048 x 9
        "ring": ("DP16KD", 24),  # 24 bits x 16 x 1024: 24 of 16384 x 1
        "state": ("DP16KD", 3),  # 52 bits x 1024: 3 of 1024 x 18
        "params": ("DP16KD", 4),  # 62 bits x 1024: 4 of 1024 x 18
        "axon_bank": ("DP16KD", 2),  # 29 bits x 1024: 2 of 1024 x 18
        "learning.x_mem": ("DP16KD", 1),  # 16 bits x 1024
        "learning.pre_flag": ("DP16KD", 1),  # 1 bit x 1024
        "learning.y_mem": ("DP16KD", 2),  # 32 bits x 1024
        "learning.post_flag": ("DP16KD", 1),  # 1 bit x 1024
    }
    b = bits_per_entry(core, "ecp5")
    assert b.synapse == 24 * DP16KD / 16384 == 27.0
    assert b.neuron == (24 + 3 + 4 + 2 + 1) * DP16KD / 1024 == 612.0
    assert b.axon == (2 + 1 + 1) * DP16KD / 1024 == 72.0


def test_the_ulx3s_sdram_core_by_hand():
    """The ULX3S's core: 4096 neurons, its synapse table in SDRAM (two 16-bit words an
    entry), none of it in block RAM."""
    core = CoreConfig(
        neurons=4096, axons=8192, synapses=1 << 20, delay_slots=16, synapse_memory="sdram"
    )
    assert blocks_of("ecp5", core) == {
        "ring": ("DP16KD", 96),  # 24 bits x 16 x 4096: 24 x 4 of 16384 x 1
        "state": ("DP16KD", 12),  # 52 bits x 4096: 3 x 4 of 1024 x 18
        "params": ("DP16KD", 14),  # 62 bits x 4096: 7 x 2 of 2048 x 9
        "axon_bank": ("DP16KD", 20),  # 41 bits x 8192: 5 x 4 of 2048 x 9
    }
    b = bits_per_entry(core, "ecp5")
    assert b.synapse == 0.0 and b.sdram_synapse == 32.0
    assert b.neuron == (96 + 12 + 14) * DP16KD / 4096 == 549.0
    assert b.axon == 20 * DP16KD / 8192 == 45.0
    assert b.line() == "none per synapse entry (32 bits of SDRAM), 549 per neuron, 45 per axon"


def test_a_core_of_512_neurons_by_hand():
    """The OrangeCrab's core."""
    core = CoreConfig(neurons=512, axons=1024, synapses=16384, delay_slots=16, learning=True)
    b = bits_per_entry(core, "ecp5")
    # 24 bits x 16384: 24 of 16384 x 1 (or 3 x 8 of 2048 x 9)
    assert b.synapse == 24 * DP16KD / 16384 == 27.0
    # ring 12 (8192 x 2), state 2 and params 2 (512 x 36), y 1, post flag 1
    assert b.neuron == (12 + 2 + 2 + 1 + 1) * DP16KD / 512 == 648.0
    assert b.axon == (2 + 1 + 1) * DP16KD / 1024 == 72.0


def test_the_icebreakers_core_by_hand():
    """Merged banks in the SPRAMs: rows no entry uses are paid for by those used."""
    core = CoreConfig(neurons=256, axons=256, synapses=8192, delay_slots=8, stats=False)
    assert blocks_of("ice40", core) == {
        "syn_bank": ("SB_SPRAM256KA", 2),  # 32 bits x 2 x 8192: two SPRAMs side by side
        "axon_bank": ("SB_SPRAM256KA", 2),  # 30 bits x 2 x 256
        "state": ("SB_RAM40_4K", 4),  # 52 bits x 256: 4 of 256 x 16
        "ring": ("SB_RAM40_4K", 12),  # 24 bits x 8 x 256: 12 of 2048 x 2
    }
    b = bits_per_entry(core, "ice40")
    syn_row = 2 * SPRAM / (8192 + 256)  # 8192 synapse entries, then 256 neurons' parameters
    axon_row = 2 * SPRAM / (256 + 256)  # 256 axons, then the parameters
    assert b.synapse == pytest.approx(syn_row)
    assert b.axon == pytest.approx(axon_row)
    assert b.neuron == pytest.approx(4 * RAM4K / 256 + 12 * RAM4K / 256 + syn_row + axon_row)


@pytest.mark.parametrize("merged_banks", [True, False])
def test_every_bit_is_charged_once(merged_banks):
    core = CoreConfig(neurons=256, axons=512, synapses=4096, learning=True)
    b = bits_per_entry(core, "ecp5", merged_banks)
    held = sum(m.bits for m in b.memories)
    total = core.synapses * b.synapse + core.neurons * b.neuron + core.axons * b.axon
    assert total == pytest.approx(held)


def test_dense_memories_hold_a_synapse_entry_in_fewer_bits():
    """The ULX3S's former core: 32-bit words twice the table deep, against 23-bit words."""
    core = CoreConfig(neurons=256, axons=512, synapses=4096, learning=True)
    merged = bits_per_entry(core, "ecp5", merged_banks=True)
    dense = bits_per_entry(core, "ecp5", merged_banks=False)
    # 32 bits x 8192: 16 of 8192 x 2, shared by 4096 entries and 256 neurons' parameters
    assert merged.synapse == pytest.approx(16 * DP16KD / (4096 + 256))
    # 23 bits x 4096: 6 of 4096 x 4
    assert dense.synapse == 6 * DP16KD / 4096 == 27.0


def test_the_build_report_gives_the_bits_per_entry():
    rep = BuildReport("b", "B", "dev", 25.0, "sys", 1024, 16384)
    rep.bits_per_entry = {"synapse": 27.0, "neuron": 612.0, "axon": 72.0}
    assert "  block RAM per entry: 27.0 bits per synapse, 612 per neuron, 72 per axon" in (
        rep.lines()
    )
    assert '"synapse": 27.0' in rep.to_json()


@pytest.mark.parametrize("name", list(BOARDS))
def test_each_board_gives_its_cores_figures(name):
    board = BOARDS[name]
    assert board.bits_per_entry() == bits_per_entry(board.system.core, board.family)


def test_no_figures_without_block_ram():
    assert get_board("verilator").bits_per_entry() is None
    with pytest.raises(ValueError, match=r"no block RAM figures for the family 'sim'"):
        core_memories(CoreConfig(), "sim")
