// The Verilator harness of spikefab_top (hdl/top.py, SimTop): the host link's byte stream on
// stdin (bytes to the device) and stdout (bytes from the device).
//
// Every clock cycle the next input byte is offered on i_rx and every byte of o_tx is taken
// (o_tx ready is always high). Output bytes are written to stdout as soon as the design pauses
// between bytes (no byte for FLUSH_GAP cycles) or the buffer is large, so that a reply is never
// held back. stdin is read without blocking while the design runs.
//
// When the design is idle, all input has been taken, all output written, and no frame is half
// received, the harness sleeps in poll() on stdin (1 ms, doubling up to 32 ms while nothing
// happens; input wakes it at once) and clocks IDLE_BATCH cycles per wake-up, so an idle
// simulation costs almost no CPU. After a byte that leaves a frame open (any byte but END,
// 0xC0), it clocks at full speed until the receiver's timeout (+rx-timeout) has passed, so a
// truncated frame is reported TRUNCATED within milliseconds. (A design whose `idle` does not
// rise right after reset gets a warning, and STUCK_QUIET cycles without a byte either way count
// as idle.)
//
// At EOF on stdin the harness takes the rest of the input, lets the design run until it is
// quiet, writes the last bytes and exits with status 0.
//
// Plusargs:
//   +rx-timeout=N   the receiver's timeout in cycles (hdl/top.py SIM_TIMEOUT; default 65536)
//   +reset=N        cycles of reset at start (default 4)
//   +cycles         on exit, report cycles, busy cycles and times on stderr
//   +waves=PATH     (a harness built with SPIKEFAB_TRACE and --trace-fst) write an FST
//                   waveform to PATH while tracing is on: SIGUSR1 switches it on, SIGUSR2
//                   off. The host switches it while the device waits between runs, so a
//                   window of steps is traced exactly; every signal of the design is in it.
//
// Exit status: 0 after EOF on stdin (or when the reader of stdout has gone away after it),
// 1 on an I/O error, 2 on a usage error. Messages go to stderr.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

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

namespace {

constexpr uint8_t END = 0xC0;                // SLIP frame delimiter
constexpr size_t READ_CHUNK = 1 << 16;       // bytes per read() of stdin
constexpr size_t FLUSH_SIZE = 1 << 14;       // write stdout once this much is buffered
constexpr uint64_t FLUSH_GAP = 16;           // ... or after this many cycles without a byte
constexpr uint64_t READ_EVERY = 256;         // cycles between reads while input is exhausted
constexpr uint64_t IDLE_BATCH = 64;          // cycles clocked per poll() wake-up while idle
constexpr int POLL_MS = 1;                   // first poll() timeout while idle ...
constexpr int POLL_MAX_MS = 32;              // ... doubling up to this while nothing happens
constexpr uint64_t RX_MARGIN = 64;           // cycles after the receiver's timeout
constexpr uint64_t STUCK_QUIET = 1u << 17;   // quiet cycles that count as idle if `idle` is stuck
constexpr uint64_t PROBE_CYCLES = 1u << 16;  // cycles after reset in which `idle` must rise

const char* g_prog = "spikefab_top";

// tracing on (SIGUSR1) or off (SIGUSR2); read once per cycle
volatile std::sig_atomic_t g_trace_on = 0;
void on_trace_signal(int sig) { g_trace_on = sig == SIGUSR1; }

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "%s: %s: %s\n", g_prog, what, std::strerror(errno));
    std::exit(1);
}

uint64_t plusarg_u64(VerilatedContext* ctx, const char* name, uint64_t dflt) {
    const std::string prefix = std::string("+") + name + "=";
    const std::string match = ctx->commandArgsPlusMatch(prefix.c_str() + 1);
    if (match.compare(0, prefix.size(), prefix) != 0) return dflt;
    const char* text = match.c_str() + prefix.size();
    char* endp = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text, &endp, 0);
    if (errno != 0 || endp == text || *endp != '\0') {
        std::fprintf(stderr, "%s: bad value in %s\n", g_prog, match.c_str());
        std::exit(2);
    }
    return v;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

class Harness {
  public:
    Harness(VerilatedContext* ctx, Vspikefab_top* top, uint64_t rx_timeout)
        : ctx_(ctx), top_(top), rx_horizon_(rx_timeout + RX_MARGIN) {
        in_.resize(READ_CHUNK);
        out_.reserve(FLUSH_SIZE + 64);
    }

    // One clock cycle: offer a byte, take a byte, rising edge.
    void tick() {
        const bool offer = in_pos_ < in_len_;
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

    void reset(uint64_t cycles) {
        top_->rst = 1;
        for (uint64_t i = 0; i < cycles; ++i) tick();
        top_->rst = 0;
        // A design whose `idle` never rises would keep the harness awake for ever: check
        // that it rises right after reset, and otherwise sleep after long quiet spells.
        for (uint64_t i = 0; i < PROBE_CYCLES && !idle_seen_; ++i) {
            tick();
            idle_seen_ = top_->idle;
        }
        if (!idle_seen_) {
            std::fprintf(stderr,
                         "%s: warning: the design's `idle` output did not rise after reset; "
                         "the harness sleeps after %llu quiet cycles instead\n",
                         g_prog, static_cast<unsigned long long>(STUCK_QUIET));
        }
        busy_cycles_ = 0;
    }

    // Once the input buffer is used up, read what stdin has, waiting up to `wait_ms` for it.
    // (poll() before read() rather than O_NONBLOCK, which stdin may share with other programs.)
    void refill(int wait_ms = 0) {
        if (eof_ || in_pos_ < in_len_) return;
        last_read_ = cycle_;
        pollfd pfd{0, POLLIN, 0};
        const int r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno != EINTR) die("cannot poll stdin");
        if (r <= 0) return;
        const ssize_t n = read(0, in_.data(), in_.size());
        if (n > 0) {
            in_pos_ = 0;
            in_len_ = static_cast<size_t>(n);
        } else if (n == 0) {
            eof_ = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            die("cannot read stdin");
        }
    }

    void flush() {
        size_t done = 0;
        while (done < out_.size()) {
            const ssize_t n = write(1, out_.data() + done, out_.size() - done);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EPIPE) {
                    // Nobody reads the replies any more: after EOF on stdin that is a normal
                    // end; before it, the host has gone away.
                    if (!eof_) std::fprintf(stderr, "%s: stdout closed by the reader\n", g_prog);
                    std::exit(eof_ ? 0 : 1);
                }
                die("cannot write stdout");
            }
            done += static_cast<size_t>(n);
        }
        out_.clear();
    }

    // Nothing to do until more input arrives: the design is idle, every byte has been taken
    // and written, and no frame is open (or the receiver's timeout has passed).
    bool quiet() const {
        if (in_pos_ < in_len_ || !out_.empty() || top_->O_TX_VALID) return false;
        if (open_frame_ && cycle_ - last_rx_ < rx_horizon_) return false;
        if (idle_seen_) return top_->idle;
        return cycle_ - std::max(last_rx_, last_tx_) >= STUCK_QUIET;
    }

    int run() {
        for (;;) {
            // run while there is work, with occasional non-blocking reads and prompt writes
            while (!quiet()) {
                tick();
                if (in_pos_ == in_len_ && cycle_ - last_read_ >= READ_EVERY) refill();
                if (!out_.empty() &&
                    (out_.size() >= FLUSH_SIZE || cycle_ - last_tx_ >= FLUSH_GAP)) {
                    flush();
                }
            }
            flush();
            refill();
            if (in_pos_ < in_len_) continue;
            if (eof_) return 0;
            // sleep until input arrives, clocking a few cycles per wake-up; input ends the
            // sleep at once, so the timeout only sets how fast simulated time passes
            const uint64_t before = cycle_;
            refill(poll_ms_);
            if (in_pos_ < in_len_ || eof_) {
                poll_ms_ = POLL_MS;
                continue;
            }
            for (uint64_t i = 0; i < IDLE_BATCH; ++i) tick();
            poll_ms_ = before == quiet_since_ ? std::min(2 * poll_ms_, POLL_MAX_MS) : POLL_MS;
            quiet_since_ = cycle_;
        }
    }

    uint64_t cycles() const { return cycle_; }
    uint64_t busy_cycles() const { return busy_cycles_; }

  private:
    VerilatedContext* ctx_;
    Vspikefab_top* top_;
    uint64_t rx_horizon_;
    std::vector<uint8_t> in_;
    size_t in_pos_ = 0;
    size_t in_len_ = 0;
    bool eof_ = false;
    bool open_frame_ = false;  // the last byte taken left a frame open (not END)
    bool idle_seen_ = false;   // `idle` rose after reset: trust it
    std::vector<uint8_t> out_;
    uint64_t cycle_ = 0;
    uint64_t busy_cycles_ = 0;
    uint64_t last_rx_ = 0;
    uint64_t last_tx_ = 0;
    uint64_t last_read_ = 0;
    uint64_t quiet_since_ = 0;  // the cycle the last idle wake-up ended
    int poll_ms_ = POLL_MS;
#ifdef SPIKEFAB_TRACE
    VerilatedFstC* fst_ = nullptr;
#endif
};

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is an EPIPE from write(), handled there
    const auto t0 = std::chrono::steady_clock::now();
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    const uint64_t rx_timeout = plusarg_u64(ctx.get(), "rx-timeout", 1u << 16);
    const uint64_t reset_cycles = plusarg_u64(ctx.get(), "reset", 4);
    const bool report = !std::string(ctx->commandArgsPlusMatch("cycles")).empty();

    const std::string waves_arg = ctx->commandArgsPlusMatch("waves=");
#ifdef SPIKEFAB_TRACE
    std::unique_ptr<VerilatedFstC> fst;
    if (!waves_arg.empty()) ctx->traceEverOn(true);
#else
    if (!waves_arg.empty()) {
        std::fprintf(stderr, "%s: +waves needs a harness built for tracing\n", g_prog);
        return 2;
    }
#endif
    const std::unique_ptr<Vspikefab_top> top{new Vspikefab_top{ctx.get(), "TOP"}};
    int status = 0;
    uint64_t cycles = 0;
    uint64_t busy = 0;
    {
        Harness harness(ctx.get(), top.get(), rx_timeout);
#ifdef SPIKEFAB_TRACE
        if (!waves_arg.empty()) {
            std::signal(SIGUSR1, on_trace_signal);
            std::signal(SIGUSR2, on_trace_signal);
            fst.reset(new VerilatedFstC);
            top->trace(fst.get(), 99);
            fst->open(waves_arg.c_str() + std::strlen("+waves="));
            harness.trace_to(fst.get());
        }
#endif
        harness.reset(reset_cycles);
        status = harness.run();
        cycles = harness.cycles();
        busy = harness.busy_cycles();
    }
    top->final();
#ifdef SPIKEFAB_TRACE
    if (fst) fst->close();
#endif
    if (report) {
        const double wall =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = cpu_seconds();
        std::fprintf(stderr,
                     "%s: %llu cycles (%llu busy) in %.3f s wall, %.3f s CPU: "
                     "%.0f cycles per CPU second\n",
                     g_prog, static_cast<unsigned long long>(cycles),
                     static_cast<unsigned long long>(busy), wall, cpu,
                     cpu > 0 ? cycles / cpu : 0.0);
    }
    return status;
}
