// The Verilator harness of spikefab_top (hdl/top.py, SimTop) as a program: the host link's
// byte stream on stdin (bytes to the device) and stdout (bytes from the device). The device
// and its clocking are in harness.h, shared with the library (lib.cpp).
//
// Output bytes are written to stdout as soon as the design pauses between bytes (no byte for
// FLUSH_GAP cycles) or the buffer is large, so that a reply is never held back. stdin is read without blocking while the design runs.
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

#include <chrono>
#include <cerrno>
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

#include "harness.h"

namespace {

using spikefab::Device;

constexpr size_t READ_CHUNK = 1 << 16;      // bytes per read() of stdin
constexpr uint64_t READ_EVERY = 256;        // cycles between reads while input is exhausted
constexpr uint64_t IDLE_BATCH = 64;         // cycles clocked per poll() wake-up while idle
constexpr int POLL_MS = 1;                  // first poll() timeout while idle ...
constexpr int POLL_MAX_MS = 32;             // ... doubling up to this while nothing happens

const char* g_prog = "spikefab_top";

void on_trace_signal(int sig) { spikefab::g_trace_on = sig == SIGUSR1; }

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "%s: %s: %s\n", g_prog, what, std::strerror(errno));
    std::exit(1);
}

uint64_t plusarg_u64(VerilatedContext* ctx, const char* name, uint64_t dflt) {
    bool bad = false;
    const uint64_t v = spikefab::plusarg_u64(ctx, name, dflt, &bad);
    if (bad) {
        std::fprintf(stderr, "%s: bad value of +%s\n", g_prog, name);
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

// The device on stdin and stdout.
class Harness {
  public:
    explicit Harness(Device* dev) : dev_(dev) { chunk_.resize(READ_CHUNK); }

    // Once the input is used up, read what stdin has, waiting up to `wait_ms` for it.
    // (poll() before read() rather than O_NONBLOCK, which stdin may share with other programs.)
    void refill(int wait_ms = 0) {
        if (eof_ || dev_->input_left()) return;
        last_read_ = dev_->cycles();
        pollfd pfd{0, POLLIN, 0};
        const int r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno != EINTR) die("cannot poll stdin");
        if (r <= 0) return;
        const ssize_t n = read(0, chunk_.data(), chunk_.size());
        if (n > 0) {
            dev_->feed(chunk_.data(), static_cast<size_t>(n));
        } else if (n == 0) {
            eof_ = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            die("cannot read stdin");
        }
    }

    void flush() {
        std::vector<uint8_t>& out = dev_->output();
        size_t done = 0;
        while (done < out.size()) {
            const ssize_t n = write(1, out.data() + done, out.size() - done);
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
        out.clear();
    }

    int run() {
        for (;;) {
            // run while there is work, with occasional non-blocking reads and prompt writes
            while (!dev_->quiet()) {
                dev_->tick();
                if (!dev_->input_left() && dev_->cycles() - last_read_ >= READ_EVERY) refill();
                if (dev_->output_due()) flush();
            }
            flush();
            refill();
            if (dev_->input_left()) continue;
            if (eof_) return 0;
            // sleep until input arrives, clocking a few cycles per wake-up; input ends the
            // sleep at once, so the timeout only sets how fast simulated time passes
            const uint64_t before = dev_->cycles();
            refill(poll_ms_);
            if (dev_->input_left() || eof_) {
                poll_ms_ = POLL_MS;
                continue;
            }
            for (uint64_t i = 0; i < IDLE_BATCH; ++i) dev_->tick();
            poll_ms_ = before == quiet_since_ ? std::min(2 * poll_ms_, POLL_MAX_MS) : POLL_MS;
            quiet_since_ = dev_->cycles();
        }
    }

  private:
    Device* dev_;
    std::vector<uint8_t> chunk_;
    bool eof_ = false;
    uint64_t last_read_ = 0;
    uint64_t quiet_since_ = 0;  // the cycle the last idle wake-up ended
    int poll_ms_ = POLL_MS;
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
        Device dev(ctx.get(), top.get(), rx_timeout);
#ifdef SPIKEFAB_TRACE
        if (!waves_arg.empty()) {
            std::signal(SIGUSR1, on_trace_signal);
            std::signal(SIGUSR2, on_trace_signal);
            fst.reset(new VerilatedFstC);
            top->trace(fst.get(), 99);
            fst->open(waves_arg.c_str() + std::strlen("+waves="));
            dev.trace_to(fst.get());
        }
#endif
        if (!dev.reset(reset_cycles)) {
            std::fprintf(stderr,
                         "%s: warning: the design's `idle` output did not rise after reset; "
                         "the harness sleeps after %llu quiet cycles instead\n",
                         g_prog, static_cast<unsigned long long>(spikefab::STUCK_QUIET));
        }
        Harness harness(&dev);
        status = harness.run();
        cycles = dev.cycles();
        busy = dev.busy_cycles();
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
