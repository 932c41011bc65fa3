"""A failing cocotb testbench comes with its waveform: run again with the same seed and an
FST trace, on Icarus and on Verilator (sim/rtl.py, run_cocotb)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pywellen
from spikefab.sim.rtl import run_cocotb, waves_file

COUNTER = """
module counter(input clk, input rst, output reg [7:0] count);
  always @(posedge clk) count <= rst ? 8'd0 : count + 8'd1;
endmodule
"""

#: A testbench that fails once the counter reaches a random value: the seed decides when,
#: so its re-run with waves fails at the same cycle only if it repeats the seed.
BENCH = """
import random
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

@cocotb.test()
async def fails_at_a_random_count(dut):
    limit = random.randrange(20, 60)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(200):
        await RisingEdge(dut.clk)
        open("limit.txt", "w").write(str(limit))
        assert int(dut.count.value) < limit, f"count reached {limit}"
"""


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_a_failure_writes_its_waveform(sim, tmp_path, monkeypatch):
    monkeypatch.delenv("WAVES", raising=False)
    (tmp_path / "counter.v").write_text(COUNTER)
    (tmp_path / "bench_counter.py").write_text(BENCH)
    build = tmp_path / "build"
    with pytest.raises(AssertionError) as e:
        run_cocotb(sim, [tmp_path / "counter.v"], "counter", "bench_counter", tmp_path, build)
    wave = waves_file(sim, build / "waves" / "sim", "counter")
    assert str(wave) in str(e.value)
    seed = re.search(r"seed (\d+)", str(e.value))
    assert seed is not None
    # the re-run drew the same limit as the failing run
    assert (build / "limit.txt").read_text() == (build / "waves" / "sim" / "limit.txt").read_text()
    limit = int((build / "limit.txt").read_text())
    # the waveform holds the counter up to the failing value
    w = pywellen.Waveform(str(wave))
    count = next(v for v in w.all_vars() if v.full_name.endswith("counter.count"))
    values = [int(x) for _, x in count.tv if isinstance(x, int)]
    assert limit in values and max(values) <= limit + 1


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_waves_on_request(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("WAVES", "1")
    (tmp_path / "counter.v").write_text(COUNTER)
    bench = BENCH.replace("assert int(dut.count.value) < limit", "assert True or limit")
    (tmp_path / "bench_counter.py").write_text(bench)
    build = tmp_path / "build"
    run_cocotb(sim, [tmp_path / "counter.v"], "counter", "bench_counter", tmp_path, build)
    assert Path(waves_file(sim, build / "waves" / "sim", "counter")).stat().st_size > 0
