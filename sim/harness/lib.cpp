// The Verilator harness of spikefab_top (hdl/top.py, SimTop) as a shared library: the host
// runs the device in its own process (spikefab.host.verilator, in_process=True) and hands
// it the host link's bytes by function calls instead of pipes. Nothing runs between calls:
// the device is clocked only inside spikefab_harness_read, so a host with one thread is one
// busy process, not two.
//
// The byte streams and the clocking are those of the program (harness.h); the program's
// plusargs +rx-timeout=N and +reset=N apply. A design that stops with $fatal or a failed
// assertion ends the process, as it ends the program.
//
// Built with -fPIC and linked with -shared -Wl,-Bsymbolic, so that the libraries of several
// systems loaded in one process each keep their own Verilator runtime.

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "harness.h"

namespace {

constexpr uint64_t FRAME_GAP = 2;  // return this many cycles after a frame's last END

struct Handle {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vspikefab_top> top;
    std::unique_ptr<spikefab::Device> dev;
    size_t out_pos = 0;  // the output already handed on
};

void copy_message(char* err, size_t len, const std::string& text) {
    if (err == nullptr || len == 0) return;
    const size_t n = std::min(len - 1, text.size());
    std::memcpy(err, text.data(), n);
    err[n] = '\0';
}

}  // namespace

extern "C" {

// Start a device: argv are plusargs ("+rx-timeout=N", "+reset=N"). Returns null, with a
// message in err, on a bad plusarg or a design whose `idle` does not rise after reset.
void* spikefab_harness_open(int argc, const char** argv, char* err, size_t err_len) {
    std::unique_ptr<Handle> h{new Handle};
    h->ctx.reset(new VerilatedContext);
    std::vector<const char*> args{"spikefab_top"};
    args.insert(args.end(), argv, argv + argc);
    h->ctx->commandArgs(static_cast<int>(args.size()), args.data());
    bool bad = false;
    const uint64_t rx_timeout = spikefab::plusarg_u64(h->ctx.get(), "rx-timeout", 1u << 16, &bad);
    const uint64_t reset_cycles = spikefab::plusarg_u64(h->ctx.get(), "reset", 4, &bad);
    if (bad) {
        copy_message(err, err_len, "bad value of +rx-timeout or +reset");
        return nullptr;
    }
    h->top.reset(new Vspikefab_top{h->ctx.get(), "TOP"});
    h->dev.reset(new spikefab::Device(h->ctx.get(), h->top.get(), rx_timeout));
    if (!h->dev->reset(reset_cycles)) {
        copy_message(err, err_len,
                     "the design's `idle` output did not rise after reset; "
                     "run it as a program (in_process=False)");
        return nullptr;
    }
    return h.release();
}

// Append n bytes to the device's input.
void spikefab_harness_write(void* handle, const uint8_t* data, size_t n) {
    static_cast<Handle*>(handle)->dev->feed(data, n);
}

// Clock the device until it has nothing to do without more input, until a reply frame is
// complete (and no other has started), until much output is waiting, or for at most
// max_cycles. (Unlike the program, it does not hand on output at every pause: nothing else
// runs meanwhile, and one call per frame is cheaper than one per burst of a frame.) Copies
// up to cap bytes of output to buf and returns how many; *settled is set to 1 when the
// device will do nothing more until it is given input, 0 otherwise.
size_t spikefab_harness_read(void* handle, uint8_t* buf, size_t cap, uint64_t max_cycles,
                             int* settled) {
    Handle* h = static_cast<Handle*>(handle);
    spikefab::Device& dev = *h->dev;
    std::vector<uint8_t>& out = dev.output();
    if (h->out_pos == out.size()) {
        out.clear();
        h->out_pos = 0;
        for (uint64_t i = 0; i < max_cycles && !dev.settled(); ++i) {
            dev.tick();
            if (out.size() >= spikefab::OUTPUT_LIMIT || dev.frame_out(FRAME_GAP)) break;
        }
    }
    const size_t n = std::min(cap, out.size() - h->out_pos);
    std::memcpy(buf, out.data() + h->out_pos, n);
    h->out_pos += n;
    *settled = h->out_pos == out.size() && dev.settled() ? 1 : 0;
    return n;
}

// End the device (final blocks run) and free it.
void spikefab_harness_close(void* handle) {
    std::unique_ptr<Handle> h{static_cast<Handle*>(handle)};
    h->top->final();
}

}  // extern "C"
