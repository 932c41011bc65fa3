"""Gateware of spikefab: neuron cores, learning units, spike router and host link.

The arithmetic constants every other part follows live in :mod:`spikefab.hdl.params`,
which imports nothing heavy so that the golden model and the host can use it freely.
"""
