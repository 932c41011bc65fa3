"""The learning regression of the neuron core: STDP on the core against the golden model.

For every case of ``learn_cases.py`` the testbench loads a learning core, plays the axon
events of every step (in a random order) and checks every output spike against the golden
model. After every few steps it pulses ``learn`` (the learning phase of the last step runs at
once, contract 6.4) and reads back the weight of every plastic synapse entry, the trace of
every plastic axon and the trace (and, with stochastic rounding, the LFSR) of every
post-synaptic neuron, which must equal the golden model's after that step exactly; between
those checks the learning phase runs at the start of the next step. Each case runs with and
without idle cycles and backpressure.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest
from spikefab.hdl.layouts import POST_TRACE, PRE_TRACE, CoreConfig, CoreMem, CoreReg, unpack

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

try:
    import cocotb
except ImportError:  # the pytest side reports the missing tool
    cocotb = None

if cocotb is not None:
    from test_core import TB

    def _case_names() -> list[str]:
        manifest = os.environ.get("SPIKEFAB_LEARN_MANIFEST")
        if not manifest:
            return ["(none)"]
        return list(json.loads(Path(manifest).read_text())["cases"])

    async def _learn(tb: TB) -> None:
        tb.dut.learn.value = 1
        await tb.tick()
        tb.dut.learn.value = 0

    async def _check_learning(tb: TB, c: dict, t: int, cfg: CoreConfig, case: str) -> None:
        """Weights and traces after the learning phase of step ``t``."""
        pending = await tb.cfg_read(CoreMem.REGS, CoreReg.LEARN_PENDING)
        assert pending == 0, f"{case}: step {t}: learning still pending after `learn`"
        for e in c["plastic_entries"]:
            got = unpack(cfg.synapse_layout, await tb.cfg_read(CoreMem.SYNAPSES, int(e)))
            want = int(c["weights"][t, e])
            assert got["weight"] == want, (
                f"{case}: step {t}: entry {e}: weight {got['weight']} != golden {want}"
            )
        for a in c["plastic_axons"]:
            got = unpack(PRE_TRACE, await tb.cfg_read(CoreMem.PRE_TRACES, int(a)))
            want = int(c["x"][t, a])
            assert got["x"] == want, f"{case}: step {t}: axon {a}: x {got['x']} != golden {want}"
        for j in c["post_neurons"]:
            got = unpack(POST_TRACE, await tb.cfg_read(CoreMem.POST_TRACES, int(j)))
            want = int(c["y"][t, j])
            assert got["y"] == want, f"{case}: step {t}: neuron {j}: y {got['y']} != golden {want}"
            if c["meta"]["stochastic"]:
                want = int(c["lfsr"][t, j])
                assert got["lfsr"] == want, (
                    f"{case}: step {t}: neuron {j}: LFSR {got['lfsr']:#06x} != {want:#06x}"
                )

    @cocotb.test()
    @cocotb.parametrize(case=_case_names(), stress=[False, True])
    async def learning_matches_golden(dut, case: str, stress: bool) -> None:  # type: ignore[no-untyped-def]
        from learn_cases import load_case

        manifest = json.loads(Path(os.environ["SPIKEFAB_LEARN_MANIFEST"]).read_text())
        cfg = CoreConfig(**manifest["config"])
        c = load_case(Path(manifest["cases"][case]))
        tb = TB(dut, cfg, stress, seed=zlib.crc32(f"{case} {stress}".encode()))
        await tb.start()
        await tb.load(c["words"])
        for mem in (CoreMem.PRE_TRACES, CoreMem.POST_TRACES):
            ws = c["words"].get(mem)
            ws = [] if ws is None else ws
            for addr in range(cfg.depth_of(mem)):
                await tb.cfg_write(mem, addr, int(ws[addr]) if addr < len(ws) else 0)
        for r, v in c["regs"]:
            await tb.cfg_write(CoreMem.REGS, int(r), int(v))
        steps = c["meta"]["steps"]
        # check after every step of the small cases and every few steps of the large ones
        # (reading back every weight is slow in simulation), less often with stress, so that
        # most learning phases run at the start of a step
        every = c["meta"]["check_every"] * (3 if stress else 1)
        learn_cycles = 0
        for t in range(steps + 1):
            events = [int(a) for a in c["events_per_step"][t]]
            tb.rng.shuffle(events)  # delivery order must not matter
            await tb.deliver(events)
            if t > 0 and (t % every == 0 or t == steps):
                await _learn(tb)
                await _check_learning(tb, c, t - 1, cfg, case)
            if t == steps:
                break
            spikes = await tb.update()
            want = [int(x) for x in c["spikes_per_step"][t]]
            assert spikes == want, f"{case}: step {t}: spikes {spikes} != golden {want}"
            pending = await tb.cfg_read(CoreMem.REGS, CoreReg.LEARN_PENDING)
            assert pending == 1, f"{case}: step {t}: no learning phase pending after the update"
        learn_cycles = await tb.cfg_read(CoreMem.REGS, CoreReg.LEARN_CYCLES)
        assert learn_cycles > 0
        dut._log.info(
            "%s (stress=%s): %d steps, %d spikes, %d weights changed, %d learning cycles",
            case,
            stress,
            steps,
            int(c["spike_counts"].sum()),
            c["meta"]["weights_changed"],
            learn_cycles,
        )


# pytest side ----------------------------------------------------------------------------------


def test_cases_exercise_learning(tmp_path: Path) -> None:
    """Every case changes weights on the golden model (else it would test nothing)."""
    from learn_cases import CASES, build_cases, load_case

    manifest = json.loads(build_cases(tmp_path).read_text())
    for name in CASES:
        meta = load_case(Path(manifest["cases"][name]))["meta"]
        assert meta["weights_changed"] > 0, f"{name}: no weight changes"
        assert meta["total_spikes"] > 0, f"{name}: no spikes"
    # the corner case reaches the trace ceiling and both weight clamps
    meta = load_case(Path(manifest["cases"]["saturation"]))["meta"]
    assert meta["trace_max"] == 65535
    assert meta["at_w_min"] > 0 and meta["at_w_max"] > 0


@pytest.mark.parametrize(("sim", "banks"), [("icarus", "merged"), ("verilator", "dense")])
def test_learning(sim: str, banks: str) -> None:
    """The learning unit with each memory arrangement (merged banks on an iCE40)."""
    from learn_cases import run_regression

    build = ROOT / "sim_build" / "learning" / f"{sim}_{banks}"
    run_regression(sim, build, merged_banks=banks == "merged")
