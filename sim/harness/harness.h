// The device of the Verilator harness: spikefab_top (hdl/top.py, SimTop) and the host link's
// two byte streams, clocked one cycle at a time. The program (main.cpp) feeds it from stdin
// and writes its bytes to stdout; the library (lib.cpp) is fed and read by the host in its
// own process.
//
// Every clock cycle the next input byte is offered on i_rx and every byte of o_tx is taken
// (o_tx ready is always high).

#pragma once

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "Vspikefab_top.h"
#include "verilated.h"
#ifdef SPIKEFAB_TRACE
#include "verilated_fst_c.h"
#endif

// Verilator spells the "__" of a port name as "___05F".
#define I_RX_PAYLOAD i_rx___05Fpayload
#define I_RX_VALID i_rx___05Fvalid
#define I_RX_READY i_rx___05Fready
#define O_TX_PAYLOAD o_tx___05Fpayload
#define O_TX_VALID o_tx___05Fvalid
#define O_TX_READY o_tx___05Fready

namespace spikefab {

constexpr uint8_t END = 0xC0;                // SLIP frame delimiter
constexpr uint64_t FLUSH_GAP = 16;           // output is due after this many cycles without a byte
constexpr size_t OUTPUT_LIMIT = 1 << 14;     // ... or once this much of it is waiting
constexpr uint64_t RX_MARGIN = 64;           // cycles after the receiver's timeout
constexpr uint64_t STUCK_QUIET = 1u << 17;   // quiet cycles that count as idle if `idle` is stuck
constexpr uint64_t PROBE_CYCLES = 1u << 16;  // cycles after reset in which `idle` must rise

// Tracing on or off; read once per evaluation.
inline volatile std::sig_atomic_t g_trace_on = 0;

// Parse the plusarg +name=N, or return dflt. Sets *bad on a value that is not a number.
inline uint64_t plusarg_u64(VerilatedContext* ctx, const char* name, uint64_t dflt, bool* bad) {
    const std::string prefix = std::string("+") + name + "=";
    const std::string match = ctx->commandArgsPlusMatch(prefix.c_str() + 1);
    if (match.compare(0, prefix.size(), prefix) != 0) return dflt;
    const char* text = match.c_str() + prefix.size();
    char* endp = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &endp, 0);
    if (errno != 0 || endp == text || *endp != '\0') {
        *bad = true;
        return dflt;
    }
    return v;
}

class Device {
  public:
    Device(VerilatedContext* ctx, Vspikefab_top* top, uint64_t rx_timeout)
        : ctx_(ctx), top_(top), rx_horizon_(rx_timeout + RX_MARGIN) {}

    // One clock cycle: offer a byte, take a byte, rising edge.
    void tick() {
        const bool offer = in_pos_ < in_.size();
        top_->I_RX_VALID = offer;
        top_->I_RX_PAYLOAD = offer ? in_[in_pos_] : 0;
        top_->O_TX_READY = 1;
        top_->clk = 0;
#ifdef SPIKEFAB_SDRAM_CLK
        // the SDRAM's clock runs at twice the design's, its rising edges on the design's
        top_->sdram_clk = 0;
#endif
        eval_step();
        const bool took = offer && top_->I_RX_READY;
        const bool sent = top_->O_TX_VALID;
        const uint8_t byte = top_->O_TX_PAYLOAD;
#ifdef SPIKEFAB_SDRAM_CLK
        top_->sdram_clk = 1;
        eval_step();
        top_->sdram_clk = 0;
        eval_step();
        top_->sdram_clk = 1;
#endif
        top_->clk = 1;
        eval_step();
        ++cycle_;
        if (!top_->idle) ++busy_cycles_;
        if (took) {
            open_frame_ = in_[in_pos_] != END;
            ++in_pos_;
            last_rx_ = cycle_;
        }
        if (sent) {
            out_.push_back(byte);
            last_tx_ = cycle_;
        }
    }

#ifdef SPIKEFAB_TRACE
    void trace_to(VerilatedFstC* fst) { fst_ = fst; }
#endif

    // Evaluate the design, dump it when tracing, advance time by one unit.
    void eval_step() {
        top_->eval();
#ifdef SPIKEFAB_TRACE
        if (fst_ != nullptr && g_trace_on) fst_->dump(ctx_->time());
#endif
        ctx_->timeInc(1);
    }

    // Hold reset for `cycles`, then check that `idle` rises. A design whose `idle` never
    // rises would keep a harness awake for ever: returns false for such a design, which
    // then counts STUCK_QUIET cycles without a byte as idle.
    bool reset(uint64_t cycles) {
        top_->rst = 1;
        for (uint64_t i = 0; i < cycles; ++i) tick();
        top_->rst = 0;
        for (uint64_t i = 0; i < PROBE_CYCLES && !idle_seen_; ++i) {
            tick();
            idle_seen_ = top_->idle;
        }
        busy_cycles_ = 0;
        return idle_seen_;
    }

    // Append bytes to the input (the part already taken is dropped first).
    void feed(const uint8_t* data, size_t n) {
        if (in_pos_ == in_.size()) {
            in_.clear();
            in_pos_ = 0;
        } else if (in_pos_ > (1u << 16) && in_pos_ * 2 > in_.size()) {
            in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_pos_));
            in_pos_ = 0;
        }
        in_.insert(in_.end(), data, data + n);
    }

    bool input_left() const { return in_pos_ < in_.size(); }

    // Nothing to do until more input arrives: the design is idle, every input byte has been
    // taken, and no frame is open (or the receiver's timeout has passed). Output may wait.
    bool settled() const {
        if (input_left() || top_->O_TX_VALID) return false;
        if (open_frame_ && cycle_ - last_rx_ < rx_horizon_) return false;
        if (idle_seen_) return top_->idle;
        return cycle_ - std::max(last_rx_, last_tx_) >= STUCK_QUIET;
    }

    // ... and every output byte has been handed on.
    bool quiet() const { return out_.empty() && settled(); }

    // Output should be handed on: there is a lot of it, or the design has paused.
    bool output_due() const {
        return !out_.empty() && (out_.size() >= OUTPUT_LIMIT || cycle_ - last_tx_ >= FLUSH_GAP);
    }

    // A reply frame is complete: the last byte out is END, and no byte has followed it for
    // `gap` cycles (at least 2: a frame that follows at once starts with END too).
    bool frame_out(uint64_t gap) const {
        return !out_.empty() && out_.back() == END && cycle_ - last_tx_ >= gap;
    }

    std::vector<uint8_t>& output() { return out_; }
    uint64_t cycles() const { return cycle_; }
    uint64_t busy_cycles() const { return busy_cycles_; }

  private:
    VerilatedContext* ctx_;
    Vspikefab_top* top_;
    uint64_t rx_horizon_;
    std::vector<uint8_t> in_;
    size_t in_pos_ = 0;
    bool open_frame_ = false;  // the last byte taken left a frame open (not END)
    bool idle_seen_ = false;   // `idle` rose after reset: trust it
    std::vector<uint8_t> out_;
    uint64_t cycle_ = 0;
    uint64_t busy_cycles_ = 0;
    uint64_t last_rx_ = 0;
    uint64_t last_tx_ = 0;
#ifdef SPIKEFAB_TRACE
    VerilatedFstC* fst_ = nullptr;
#endif
};

}  // namespace spikefab
