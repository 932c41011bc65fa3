// sdram_model.v: a cycle-based simulation model of a 16-bit SDR SDRAM, the Alliance
// AS4C32M16SB (32M x 16: 4 banks x 8192 rows x 1024 columns) of the ULX3S, that holds its
// data and checks the controller against the datasheet's rules.
//
// Figures (AS4C32M16SB datasheet rev 1.0, June 2016; Table 16, A.C. characteristics,
// speed grade -7; features list; command descriptions):
//
//   parameter      -7 value     meaning
//   TRCD_PS        21 ns        ACTIVE to READ or WRITE, same bank
//   TRP_PS         21 ns        PRECHARGE to ACTIVE or REFRESH, same bank
//   TRC_PS         63 ns        ACTIVE to ACTIVE (or REFRESH), same bank
//   TRAS_PS        42 ns        ACTIVE to PRECHARGE, same bank (minimum)
//   TRAS_MAX_PS    120000 ns    longest a row may stay open
//   TWR_PS         14 ns        last write data in to PRECHARGE (write recovery)
//   TRRD_PS        14 ns        ACTIVE to ACTIVE, different banks
//   TMRD_PS        14 ns        LOAD MODE REGISTER to the next command, and
//   TMRD_CK        2 clocks     at least this many clocks (14 ns is 2 clocks at 7 ns)
//   TRFC_PS        63 ns        AUTO REFRESH to the next command
//   TCK_CL2_PS     10 ns        shortest clock period at CAS latency 2 (100 MHz)
//   TCK_CL3_PS     7 ns         shortest clock period at CAS latency 3 (143 MHz)
//   TREF_CYCLES    64 ms        refresh window: every row refreshed within it ...
//   REFRESH_ROWS   8192         ... by 8192 AUTO REFRESH commands (tREFI 7.8 us)
//   INIT_CYCLES    200 us       power-up wait with stable clock and NOP
//   INIT_REFRESHES 8            AUTO REFRESH commands in the power-up sequence (the
//                               family's and Winbond's count; Micron asks for 2)
//   DQM latency    2 (read), 0 (write); CAS latency 2 or 3; burst length 1, 2, 4, 8 or
//                  full page (sequential); write burst mode: programmed length or single.
//
// Timing: a command, address, DQM and write data are sampled on the rising edge of clk.
// The edges are numbered from 0 (the first edge after power-up). Read data for a READ
// registered at edge c, CAS latency CL, is sampled by the controller at edge c + CL (and
// c + CL + 1, ... for the rest of the burst): the model sets dq_o and dq_oe on edge
// c + CL - 1 and holds them until the next edge, as the chip drives the bus tAC after that
// edge. DQM registered at edge e masks the read data sampled at edge e + 2 (dq_oe low for
// that byte) and the write data at edge e itself.
//
// Bursts: a READ, WRITE or BURST TERMINATE ends the running burst (its column access at
// that edge does not happen); a PRECHARGE of the burst's bank ends a read burst the same
// way, and a write burst after the data at that edge (which DQM must mask, see tWR). So
// read data stops CL - 1 edges after the interrupting command. A WRITE also turns the
// outputs off at once: read data due at the edges after the WRITE is dropped; read data
// due at the WRITE's own edge must be masked with DQM (else "contention"). Auto precharge
// starts when the burst ends (read: the edge after its last column access; write: tWR
// after its last data) but not before tRAS; it is ignored for full-page bursts. The bank
// counts as closed from the READ or WRITE with auto precharge on. A PRECHARGE of an idle
// bank does nothing, but for the power-up PRECHARGE ALL: every bank is idle tRP after it.
//
// Rules, each with a code on `rule` (the first one broken) and a message that names it:
//    1 init        command other than NOP before the power-up wait ends; first command
//                  after it not PRECHARGE ALL; ACTIVE/READ/WRITE/BURST TERMINATE before
//                  INIT_REFRESHES AUTO REFRESH and a LOAD MODE REGISTER
//    2 tRCD   3 tRP   4 tRC   5 tRAS   6 tRAS_max   7 tWR   8 tRRD   9 tMRD   10 tRFC
//   11 refresh     a row of the refresh counter not refreshed within TREF_CYCLES (checked
//                  on every edge from the end of the power-up sequence)
//   12 bank_state  READ/WRITE to a bank with no open row (or auto precharging), ACTIVE to a
//                  bank with a row open, AUTO REFRESH or LOAD MODE REGISTER with a row open
//                  or a burst running
//   13 contention  the controller (dq_oe_ctrl) and the model drive dq for the same edge
//   14 mode        a mode register value the model does not support (interleaved bursts,
//                  reserved codes, test modes, a CAS latency too short for CLK_PS)
//   15 cke         cke low after the power-up wait (power-down and self refresh are not
//                  modelled)
//
// The memory is 4 << (ROW_BITS + COL_BITS) words, uninitialised (X on Icarus).

`default_nettype none

module sdram_model #(
    parameter integer ROW_BITS = 13,
    parameter integer COL_BITS = 10,
    parameter integer CLK_PS = 40000,
    parameter integer TRCD_PS = 21000,
    parameter integer TRP_PS = 21000,
    parameter integer TRC_PS = 63000,
    parameter integer TRAS_PS = 42000,
    parameter integer TRAS_MAX_PS = 120000000,
    parameter integer TWR_PS = 14000,
    parameter integer TRRD_PS = 14000,
    parameter integer TMRD_PS = 14000,
    parameter integer TMRD_CK = 2,
    parameter integer TRFC_PS = 63000,
    parameter integer TCK_CL2_PS = 10000,
    parameter integer TCK_CL3_PS = 7000,
    // floor(64 ms / CLK_PS), computed in 32 bits
    parameter integer TREF_CYCLES = (64000000 / CLK_PS) * 1000
                                    + ((64000000 % CLK_PS) * 1000) / CLK_PS,
    parameter integer REFRESH_ROWS = 8192,
    parameter integer INIT_CYCLES = (200000000 + CLK_PS - 1) / CLK_PS,
    parameter integer INIT_REFRESHES = 8,
    parameter integer FATAL = 1
) (
    input wire clk,
    input wire cke,
    input wire cs_n,
    input wire ras_n,
    input wire cas_n,
    input wire we_n,
    input wire [1:0] ba,
    input wire [12:0] a,
    input wire [1:0] dqm,
    input wire [15:0] dq_i,
    input wire dq_oe_ctrl,
    output reg [15:0] dq_o,
    output reg [1:0] dq_oe,
    output wire dq_drive,
    output reg violation,
    output reg [7:0] rule,
    output reg [31:0] refreshes,
    output reg [63:0] cycle
);

    localparam integer BANK_BITS = 2;
    localparam integer WORDS = 1 << (BANK_BITS + ROW_BITS + COL_BITS);

    // Clock counts: minimums rounded up, the tRAS maximum rounded down.
    localparam [63:0] CLK = {32'd0, CLK_PS};
    function [63:0] up(input [63:0] ps);
        up = (ps + CLK - 64'd1) / CLK;
    endfunction
    localparam [63:0] N_RCD = up({32'd0, TRCD_PS});
    localparam [63:0] N_RP = up({32'd0, TRP_PS});
    localparam [63:0] N_RC = up({32'd0, TRC_PS});
    localparam [63:0] N_RAS = up({32'd0, TRAS_PS});
    localparam [63:0] N_RAS_MAX = {32'd0, TRAS_MAX_PS} / CLK;
    localparam [63:0] N_WR = up({32'd0, TWR_PS});
    localparam [63:0] N_RRD = up({32'd0, TRRD_PS});
    localparam [63:0] N_MRD = up({32'd0, TMRD_PS}) > {32'd0, TMRD_CK}
                              ? up({32'd0, TMRD_PS}) : {32'd0, TMRD_CK};
    localparam [63:0] N_RFC = up({32'd0, TRFC_PS});
    localparam [63:0] N_REF = {32'd0, TREF_CYCLES};

    // Rule codes.
    localparam [7:0] R_INIT = 8'd1, R_TRCD = 8'd2, R_TRP = 8'd3, R_TRC = 8'd4,
                     R_TRAS = 8'd5, R_TRAS_MAX = 8'd6, R_TWR = 8'd7, R_TRRD = 8'd8,
                     R_TMRD = 8'd9, R_TRFC = 8'd10, R_REFRESH = 8'd11,
                     R_BANK_STATE = 8'd12, R_CONTENTION = 8'd13, R_MODE = 8'd14,
                     R_CKE = 8'd15;

    // Messages: a violation is queued with one of these and up to two values, and
    // printed at the end of the edge (Verilator copies the model per instance: one
    // formatting site per message keeps that small).
    localparam [4:0] M_CONTENTION = 5'd0, M_REFRESH = 5'd1, M_RAS_MAX = 5'd2, M_CKE = 5'd3,
                     M_INIT_WAIT = 5'd4, M_INIT_PALL = 5'd5, M_INIT_REFS = 5'd6,
                     M_TRFC = 5'd7, M_TMRD = 5'd8, M_ACT_OPEN = 5'd9, M_TRP = 5'd10,
                     M_TRP_AUTO = 5'd11, M_TRC = 5'd12, M_TRRD = 5'd13, M_NO_ROW = 5'd14,
                     M_TRCD = 5'd15, M_TRAS = 5'd16, M_TWR = 5'd17, M_ROW_OPEN = 5'd18,
                     M_IN_BURST = 5'd19, M_MODE_BT = 5'd20, M_MODE_BL = 5'd21,
                     M_MODE_CL = 5'd22, M_MODE_CL2 = 5'd23, M_MODE_CL3 = 5'd24,
                     M_MODE_TM = 5'd25, M_MODE_RSV = 5'd26;

    // Commands, {ras_n, cas_n, we_n} with cs_n low.
    localparam [2:0] C_ACT = 3'b011, C_READ = 3'b101, C_WRITE = 3'b100, C_BST = 3'b110,
                     C_PRE = 3'b010, C_REF = 3'b001, C_LMR = 3'b000, C_NOP = 3'b111;

    // Cycle numbers are kept with this offset, so that 0 means "never" and is far
    // enough in the past for every rule.
    localparam [63:0] OFFSET = 64'h0000_0001_0000_0000;
    localparam [63:0] NEVER = 64'd0;
    localparam [31:0] NONE = 32'hffff_ffff;  // no bank or row to name in a message

    // Power-up sequence states.
    localparam [1:0] I_WAIT = 2'd0, I_PALL = 2'd1, I_REF_MRS = 2'd2, I_DONE = 2'd3;

    function [8*10-1:0] rule_name(input [7:0] code);
        case (code)
            R_INIT: rule_name = "init";
            R_TRCD: rule_name = "tRCD";
            R_TRP: rule_name = "tRP";
            R_TRC: rule_name = "tRC";
            R_TRAS: rule_name = "tRAS";
            R_TRAS_MAX: rule_name = "tRAS_max";
            R_TWR: rule_name = "tWR";
            R_TRRD: rule_name = "tRRD";
            R_TMRD: rule_name = "tMRD";
            R_TRFC: rule_name = "tRFC";
            R_REFRESH: rule_name = "refresh";
            R_BANK_STATE: rule_name = "bank_state";
            R_CONTENTION: rule_name = "contention";
            R_MODE: rule_name = "mode";
            R_CKE: rule_name = "cke";
            default: rule_name = "unknown";
        endcase
    endfunction

    function [8*6-1:0] cmd_name(input [2:0] c);
        case (c)
            C_ACT: cmd_name = "ACTIVE";
            C_READ: cmd_name = "READ";
            C_WRITE: cmd_name = "WRITE";
            C_BST: cmd_name = "BST";
            C_PRE: cmd_name = "PRE";
            C_REF: cmd_name = "REF";
            C_LMR: cmd_name = "LMR";
            default: cmd_name = "NOP";
        endcase
    endfunction

    reg [15:0] mem[0:WORDS-1];

    // Bank state.
    reg [3:0] open_b;  // a row is open (and no auto precharge is pending)
    reg [ROW_BITS-1:0] row_b[0:3];
    reg [63:0] t_act[0:3];  // last ACTIVE
    reg [63:0] t_pre[0:3];  // last precharge start (may lie ahead: auto precharge)
    reg [63:0] t_wr[0:3];  // last edge with write data taken for the bank
    reg [3:0] ras_late;  // tRAS_max reported for this activation

    // Refresh counter: last_ref[r] is the edge at which row r was last refreshed.
    reg [63:0] last_ref[0:REFRESH_ROWS-1];
    integer ref_ptr;
    reg ref_late;
    reg [63:0] t_ref, t_mrd, t_init_done;

    // Power-up sequence and mode register.
    reg [1:0] init_state;
    integer init_refs;
    reg mode_loaded;
    integer m_bl;  // burst length in beats (the page for full page)
    reg m_full;
    integer m_cl;
    reg m_single;  // write burst mode: single location

    // The running burst.
    reg bu_on, bu_wr, bu_ap, bu_full;
    reg [1:0] bu_bank;
    reg [ROW_BITS-1:0] bu_row;
    reg [COL_BITS-1:0] bu_col;
    integer bu_beat, bu_len;

    // Read data on its way out: p1 was read at the last edge, p2 at the one before.
    reg p1_v, p2_v;
    reg [15:0] p1_d, p2_d;
    reg [1:0] dqm_d1;  // DQM at the last edge

    reg [63:0] edges;  // edges seen
    reg [63:0] now;
    reg cke_low;
    reg any_violation;
    reg [8*96-1:0] msg, where;

    // Per-edge temporaries.
    reg [2:0] cmd;
    reg [8*6-1:0] cname;
    reg rd_now_v, out_v, flush;
    reg [15:0] rd_now_d, out_d;
    reg [BANK_BITS+ROW_BITS+COL_BITS-1:0] idx;
    reg [63:0] start, base;
    integer b, ob, o;

    // The violations of this edge.
    localparam integer QUEUE = 8;
    reg [7:0] q_code[0:QUEUE-1];
    reg [31:0] q_bank[0:QUEUE-1];
    reg [31:0] q_row[0:QUEUE-1];
    reg [4:0] q_msg[0:QUEUE-1];
    reg [63:0] q_v1[0:QUEUE-1];
    reg [63:0] q_v2[0:QUEUE-1];
    integer q_n, q_i;

    assign dq_drive = |dq_oe;

    task report(input [7:0] code, input [31:0] bank, input [31:0] row, input [4:0] m,
                input [63:0] v1, input [63:0] v2);
        begin
            if (q_n < QUEUE) begin
                q_code[q_n] = code;
                q_bank[q_n] = bank;
                q_row[q_n] = row;
                q_msg[q_n] = m;
                q_v1[q_n] = v1;
                q_v2[q_n] = v2;
                q_n = q_n + 1;
            end
        end
    endtask

    function [31:0] row_arg(input [ROW_BITS-1:0] r);
        row_arg = {{(32 - ROW_BITS) {1'b0}}, r};
    endfunction

    // Column of beat `beat` of a burst from `col0`: sequential, wrapping inside the
    // burst's aligned block (the whole page for full page).
    function [COL_BITS-1:0] beat_col(input [COL_BITS-1:0] col0, input [COL_BITS-1:0] beat,
                                     input [COL_BITS-1:0] len, input full);
        reg [COL_BITS-1:0] mask;
        begin
            mask = full ? {COL_BITS{1'b1}} : len - 1'b1;
            beat_col = (col0 & ~mask) | ((col0 + beat) & mask);
        end
    endfunction

    // The burst ends at edge `t` (its last data, if a write, was at t - 1). With auto
    // precharge on, the precharge of its bank starts then (a write: tWR later).
    task end_burst(input [63:0] t);
        begin
            if (bu_on && bu_ap) begin
                start = bu_wr ? t - 1 + N_WR : t;
                if (start < t_act[bu_bank] + N_RAS) start = t_act[bu_bank] + N_RAS;
                t_pre[bu_bank] = start;
            end
            bu_on = 1'b0;
        end
    endtask

    // The running burst's column access at this edge.
    task do_beat;
        begin
            idx = {bu_bank, bu_row,
                   beat_col(bu_col, bu_beat[COL_BITS-1:0], bu_len[COL_BITS-1:0], bu_full)};
            if (bu_wr) begin
                if (!dqm[0]) mem[idx][7:0] = dq_i[7:0];
                if (!dqm[1]) mem[idx][15:8] = dq_i[15:8];
                if (dqm != 2'b11) t_wr[bu_bank] = now;
            end else begin
                rd_now_v = 1'b1;
                rd_now_d = mem[idx];
            end
            bu_beat = bu_beat + 1;
            if (!bu_full && bu_beat >= bu_len) bu_on = 1'b0;
        end
    endtask

    initial begin
        if (COL_BITS < 3 || COL_BITS > 10 || ROW_BITS < 1 || ROW_BITS > 13)
            $fatal(1, "sdram_model: COL_BITS must be 3..10 and ROW_BITS 1..13");
        if (CLK_PS < TCK_CL3_PS)
            $display("sdram_model %m: CLK_PS %0d is shorter than the %0d ps the part allows",
                     CLK_PS, TCK_CL3_PS);
        dq_o = 16'h0000;
        dq_oe = 2'b00;
        violation = 1'b0;
        rule = 8'd0;
        refreshes = 32'd0;
        cycle = 64'd0;
        open_b = 4'b0000;
        ras_late = 4'b0000;
        for (b = 0; b < 4; b = b + 1) begin
            row_b[b] = {ROW_BITS{1'b0}};
            t_act[b] = NEVER;
            t_pre[b] = NEVER;
            t_wr[b] = NEVER;
        end
        for (b = 0; b < REFRESH_ROWS; b = b + 1) last_ref[b] = NEVER;
        ref_ptr = 0;
        ref_late = 1'b0;
        t_ref = NEVER;
        t_mrd = NEVER;
        t_init_done = NEVER;
        init_state = I_WAIT;
        init_refs = 0;
        mode_loaded = 1'b0;
        m_bl = 1;
        m_full = 1'b0;
        m_cl = 3;
        m_single = 1'b0;
        bu_on = 1'b0;
        bu_wr = 1'b0;
        bu_ap = 1'b0;
        bu_full = 1'b0;
        bu_bank = 2'd0;
        bu_row = {ROW_BITS{1'b0}};
        bu_col = {COL_BITS{1'b0}};
        bu_beat = 0;
        bu_len = 1;
        p1_v = 1'b0;
        p2_v = 1'b0;
        p1_d = 16'h0000;
        p2_d = 16'h0000;
        dqm_d1 = 2'b11;
        edges = 64'd0;
        now = OFFSET;
        cke_low = 1'b0;
        any_violation = 1'b0;
        msg = 0;
        where = 0;
        q_n = 0;
        q_i = 0;
    end

    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        now = OFFSET + edges;
        rd_now_v = 1'b0;
        rd_now_d = 16'h0000;
        flush = 1'b0;
        if (init_state == I_WAIT && edges >= {32'd0, INIT_CYCLES}) init_state = I_PALL;

        // The data sampled at this edge: both sides must not drive it.
        if (dq_oe_ctrl && dq_oe != 2'b00) report(R_CONTENTION, NONE, NONE, M_CONTENTION, 0, 0);

        // Rules that run with time. (Loops over the banks find the first offender and
        // report it once.)
        if (init_state == I_DONE && !ref_late) begin
            base = last_ref[ref_ptr] > t_init_done ? last_ref[ref_ptr] : t_init_done;
            if (now - base > N_REF) begin
                ref_late = 1'b1;
                report(R_REFRESH, NONE, ref_ptr, M_REFRESH, base - OFFSET, 0);
            end
        end
        ob = 4;
        for (b = 3; b >= 0; b = b - 1)
            if (open_b[b] && !ras_late[b] && now - t_act[b] > N_RAS_MAX) ob = b;
        if (ob < 4) begin
            ras_late[ob] = 1'b1;
            report(R_TRAS_MAX, ob, row_arg(row_b[ob]), M_RAS_MAX, t_act[ob] - OFFSET, 0);
        end
        if (!cke && init_state != I_WAIT && !cke_low) begin
            cke_low = 1'b1;
            report(R_CKE, NONE, NONE, M_CKE, 0, 0);
        end

        // The command.
        if (!cke || cs_n !== 1'b0) cmd = C_NOP;
        else if ({ras_n, cas_n, we_n} === C_ACT || {ras_n, cas_n, we_n} === C_READ
                 || {ras_n, cas_n, we_n} === C_WRITE || {ras_n, cas_n, we_n} === C_BST
                 || {ras_n, cas_n, we_n} === C_PRE || {ras_n, cas_n, we_n} === C_REF
                 || {ras_n, cas_n, we_n} === C_LMR)
            cmd = {ras_n, cas_n, we_n};
        else cmd = C_NOP;

        if (cmd != C_NOP) begin
            if (init_state == I_WAIT) report(R_INIT, NONE, NONE, M_INIT_WAIT, 0, 0);
            else if (init_state == I_PALL && !(cmd == C_PRE && a[10]))
                report(R_INIT, NONE, NONE, M_INIT_PALL, 0, 0);
            else if (init_state == I_REF_MRS && (cmd == C_ACT || cmd == C_READ
                                                 || cmd == C_WRITE || cmd == C_BST))
                report(R_INIT, NONE, NONE, M_INIT_REFS, {32'd0, init_refs}, {63'd0, mode_loaded});
            if (now - t_ref < N_RFC) report(R_TRFC, NONE, NONE, M_TRFC, now - t_ref, 0);
            if (now - t_mrd < N_MRD) report(R_TMRD, NONE, NONE, M_TMRD, now - t_mrd, 0);
        end

        // The running burst: ended before its access by READ, WRITE, BURST TERMINATE and
        // (a read) by a PRECHARGE of its bank; a write takes the data at a PRECHARGE's edge.
        if (bu_on) begin
            if (cmd == C_READ || cmd == C_WRITE || cmd == C_BST
                || (cmd == C_PRE && !bu_wr && (a[10] || ba == bu_bank)))
                end_burst(now);
            else begin
                do_beat;
                if (bu_on && cmd == C_PRE && (a[10] || ba == bu_bank)) end_burst(now + 1);
            end
        end

        case (cmd)
            C_ACT: begin
                b = {30'd0, ba};
                if (open_b[b])
                    report(R_BANK_STATE, b, row_arg(row_b[b]), M_ACT_OPEN,
                           {51'd0, a}, {32'd0, row_arg(row_b[b])});
                else begin
                    if (now < t_pre[b] + N_RP) begin
                        if (t_pre[b] > now)
                            report(R_TRP, b, row_arg(a[ROW_BITS-1:0]), M_TRP_AUTO,
                                   t_pre[b] - now, 0);
                        else
                            report(R_TRP, b, row_arg(a[ROW_BITS-1:0]), M_TRP, now - t_pre[b], 0);
                    end
                    if (now < t_act[b] + N_RC)
                        report(R_TRC, b, row_arg(a[ROW_BITS-1:0]), M_TRC, now - t_act[b], 0);
                end
                ob = 4;
                for (o = 3; o >= 0; o = o - 1) if (o != b && now < t_act[o] + N_RRD) ob = o;
                if (ob < 4)
                    report(R_TRRD, b, row_arg(a[ROW_BITS-1:0]), M_TRRD, now - t_act[ob],
                           {32'd0, ob});
                open_b[b] = 1'b1;
                row_b[b] = a[ROW_BITS-1:0];
                t_act[b] = now;
                t_wr[b] = NEVER;
                ras_late[b] = 1'b0;
            end

            C_READ, C_WRITE: begin
                b = {30'd0, ba};
                if (!open_b[b])
                    report(R_BANK_STATE, b, NONE, M_NO_ROW, {63'd0, t_pre[b] > now}, 0);
                else begin
                    if (now < t_act[b] + N_RCD)
                        report(R_TRCD, b, row_arg(row_b[b]), M_TRCD, now - t_act[b], 0);
                    bu_on = 1'b1;
                    bu_wr = cmd == C_WRITE;
                    bu_bank = ba;
                    bu_row = row_b[b];
                    bu_col = a[COL_BITS-1:0];
                    bu_beat = 0;
                    bu_len = (bu_wr && m_single) ? 1 : m_bl;
                    bu_full = m_full && !(bu_wr && m_single);
                    bu_ap = a[10] && !bu_full;
                    if (bu_ap) begin
                        // the bank closes: precharge from the burst's natural end, not
                        // before tRAS (moved earlier if the burst is interrupted)
                        start = bu_wr ? now + {32'd0, bu_len} - 1 + N_WR : now + {32'd0, bu_len};
                        if (start < t_act[b] + N_RAS) start = t_act[b] + N_RAS;
                        t_pre[b] = start;
                        open_b[b] = 1'b0;
                    end
                    do_beat;
                end
                if (cmd == C_WRITE) flush = 1'b1;
            end

            C_PRE: begin
                ob = 4;
                o = 4;
                for (b = 3; b >= 0; b = b - 1)
                    if ((a[10] || {30'd0, ba} == b) && open_b[b]) begin
                        if (now < t_act[b] + N_RAS) ob = b;
                        if (now < t_wr[b] + N_WR) o = b;
                    end
                if (ob < 4) report(R_TRAS, ob, row_arg(row_b[ob]), M_TRAS, now - t_act[ob], 0);
                if (o < 4) report(R_TWR, o, row_arg(row_b[o]), M_TWR, now - t_wr[o], 0);
                for (b = 0; b < 4; b = b + 1)
                    if ((a[10] || {30'd0, ba} == b) && open_b[b]) begin
                        open_b[b] = 1'b0;
                        t_pre[b] = now;
                    end
                if (init_state == I_PALL && a[10]) begin
                    // the power-up PRECHARGE ALL: every bank idle tRP later
                    for (b = 0; b < 4; b = b + 1) t_pre[b] = now;
                    init_state = I_REF_MRS;
                end
            end

            C_REF, C_LMR: begin
                if (open_b != 4'b0000) begin
                    for (b = 3; b >= 0; b = b - 1) if (open_b[b]) ob = b;
                    report(R_BANK_STATE, ob, row_arg(row_b[ob]), M_ROW_OPEN, 0, 0);
                end else if (bu_on || p1_v || p2_v)
                    report(R_BANK_STATE, {30'd0, bu_bank}, NONE, M_IN_BURST, 0, 0);
                ob = 4;
                o = 4;
                for (b = 3; b >= 0; b = b - 1) begin
                    if (now < t_pre[b] + N_RP) ob = b;
                    if (cmd == C_REF && now < t_act[b] + N_RC) o = b;
                end
                if (ob < 4) begin
                    if (t_pre[ob] > now) report(R_TRP, ob, NONE, M_TRP_AUTO, t_pre[ob] - now, 0);
                    else report(R_TRP, ob, NONE, M_TRP, now - t_pre[ob], 0);
                end
                if (o < 4) report(R_TRC, o, NONE, M_TRC, now - t_act[o], 0);
                if (cmd == C_REF) begin
                    refreshes <= refreshes + 32'd1;
                    last_ref[ref_ptr] = now;
                    ref_ptr = (ref_ptr + 1) % REFRESH_ROWS;
                    ref_late = 1'b0;
                    t_ref = now;
                    if (init_state == I_REF_MRS) init_refs = init_refs + 1;
                end else begin
                    t_mrd = now;
                    if (a[3]) report(R_MODE, NONE, NONE, M_MODE_BT, 0, 0);
                    else if (a[2:0] == 3'd4 || a[2:0] == 3'd5 || a[2:0] == 3'd6)
                        report(R_MODE, NONE, NONE, M_MODE_BL, {61'd0, a[2:0]}, 0);
                    else if (a[6:4] != 3'd2 && a[6:4] != 3'd3)
                        report(R_MODE, NONE, NONE, M_MODE_CL, {61'd0, a[6:4]}, 0);
                    else if (a[6:4] == 3'd2 && CLK_PS < TCK_CL2_PS)
                        report(R_MODE, NONE, NONE, M_MODE_CL2, 0, 0);
                    else if (a[6:4] == 3'd3 && CLK_PS < TCK_CL3_PS)
                        report(R_MODE, NONE, NONE, M_MODE_CL3, 0, 0);
                    else if (a[8:7] != 2'b00)
                        report(R_MODE, NONE, NONE, M_MODE_TM, {62'd0, a[8:7]}, 0);
                    else if (a[12:10] != 3'b000 || ba != 2'b00)
                        report(R_MODE, NONE, NONE, M_MODE_RSV, {61'd0, a[12:10]}, {62'd0, ba});
                    else begin
                        m_full = a[2:0] == 3'd7;
                        m_bl = m_full ? (1 << COL_BITS) : (1 << a[2:0]);
                        m_cl = {29'd0, a[6:4]};
                        m_single = a[9];
                        mode_loaded = 1'b1;
                    end
                end
                if (init_state == I_REF_MRS && mode_loaded && init_refs >= INIT_REFRESHES) begin
                    init_state = I_DONE;
                    t_init_done = now;
                end
            end

            default: ;  // NOP, DESELECT, BURST TERMINATE (the burst ended above)
        endcase

        // Read data: the controller samples at the next edge what was read CL - 1 edges
        // ago; DQM of the last edge masks it (read latency 2). A WRITE turns it off.
        out_v = m_cl == 2 ? p1_v : p2_v;
        out_d = m_cl == 2 ? p1_d : p2_d;
        if (flush) begin
            out_v = 1'b0;
            p1_v = 1'b0;
        end
        p2_v = p1_v;
        p2_d = p1_d;
        p1_v = rd_now_v;
        p1_d = rd_now_d;
        dq_oe <= out_v ? ~dqm_d1 : 2'b00;
        dq_o <= {out_v && !dqm_d1[1] ? out_d[15:8] : 8'h00,
                 out_v && !dqm_d1[0] ? out_d[7:0] : 8'h00};
        dqm_d1 = dqm;

        // The violations of this edge, printed.
        cname = cmd_name(cmd);
        q_i = 0;
        while (q_i < q_n) begin
            case (q_msg[q_i])
                M_CONTENTION: msg = "the controller drives dq while the model drives read data";
                M_REFRESH:
                    $sformat(msg, "row %0d of %0d not refreshed since cycle %0d, over %0d cycles",
                             q_row[q_i], REFRESH_ROWS, q_v1[q_i], N_REF);
                M_RAS_MAX:
                    $sformat(msg, "row open since cycle %0d, over tRAS max %0d cycles", q_v1[q_i],
                             N_RAS_MAX);
                M_CKE: msg = "cke low: power-down and self refresh are not modelled";
                M_INIT_WAIT:
                    $sformat(msg, "%0s during the power-up wait of %0d cycles", cname,
                             INIT_CYCLES);
                M_INIT_PALL:
                    $sformat(msg, "%0s before the PRECHARGE ALL of the power-up sequence", cname);
                M_INIT_REFS:
                    $sformat(msg, "%0s after %0d of %0d power-up AUTO REFRESH%0s", cname,
                             q_v1[q_i], INIT_REFRESHES,
                             q_v2[q_i] != 0 ? "" : ", before LOAD MODE REGISTER");
                M_TRFC:
                    $sformat(msg, "%0s %0d cycles after AUTO REFRESH, tRFC is %0d", cname,
                             q_v1[q_i], N_RFC);
                M_TMRD:
                    $sformat(msg, "%0s %0d cycles after LOAD MODE REGISTER, tMRD is %0d", cname,
                             q_v1[q_i], N_MRD);
                M_ACT_OPEN:
                    $sformat(msg, "ACTIVE row %0d while row %0d is open", q_v1[q_i], q_v2[q_i]);
                M_TRP:
                    $sformat(msg, "%0s %0d cycles after the precharge start, tRP is %0d", cname,
                             q_v1[q_i], N_RP);
                M_TRP_AUTO:
                    $sformat(msg, "%0s %0d cycles before the auto precharge starts", cname,
                             q_v1[q_i]);
                M_TRC:
                    $sformat(msg, "%0s %0d cycles after ACTIVE, tRC is %0d", cname, q_v1[q_i],
                             N_RC);
                M_TRRD:
                    $sformat(msg, "ACTIVE %0d cycles after ACTIVE to bank %0d, tRRD is %0d",
                             q_v1[q_i], q_v2[q_i], N_RRD);
                M_NO_ROW:
                    $sformat(msg, "%0s to a bank with no open row%0s", cname,
                             q_v1[q_i] != 0 ? " (auto precharge pending)" : "");
                M_TRCD:
                    $sformat(msg, "%0s %0d cycles after ACTIVE, tRCD is %0d", cname, q_v1[q_i],
                             N_RCD);
                M_TRAS:
                    $sformat(msg, "PRECHARGE %0d cycles after ACTIVE, tRAS is %0d", q_v1[q_i],
                             N_RAS);
                M_TWR:
                    $sformat(msg, "PRECHARGE %0d cycles after write data, tWR is %0d", q_v1[q_i],
                             N_WR);
                M_ROW_OPEN: $sformat(msg, "%0s with a row open", cname);
                M_IN_BURST: $sformat(msg, "%0s during a burst", cname);
                M_MODE_BT: msg = "interleaved bursts (A3 = 1) are not modelled";
                M_MODE_BL: $sformat(msg, "reserved burst length code %0d (A2-A0)", q_v1[q_i]);
                M_MODE_CL:
                    $sformat(msg, "CAS latency code %0d (A6-A4): only 2 and 3", q_v1[q_i]);
                M_MODE_CL2:
                    $sformat(msg, "CAS latency 2 needs a clock period of %0d ps, not %0d",
                             TCK_CL2_PS, CLK_PS);
                M_MODE_CL3:
                    $sformat(msg, "CAS latency 3 needs a clock period of %0d ps, not %0d",
                             TCK_CL3_PS, CLK_PS);
                M_MODE_TM: $sformat(msg, "test mode %0d (A8-A7)", q_v1[q_i]);
                default:
                    $sformat(msg, "reserved bits set: A12-A10 = %0d, BA = %0d", q_v1[q_i],
                             q_v2[q_i]);
            endcase
            if (q_bank[q_i] != NONE && q_row[q_i] != NONE)
                $sformat(where, " (bank %0d row %0d)", q_bank[q_i], q_row[q_i]);
            else if (q_bank[q_i] != NONE) $sformat(where, " (bank %0d)", q_bank[q_i]);
            else if (q_row[q_i] != NONE) $sformat(where, " (row %0d)", q_row[q_i]);
            else where = 0;
            $display("sdram_model %m: %0s violated at cycle %0d%0s: %0s",
                     rule_name(q_code[q_i]), edges, where, msg);
            if (!any_violation) rule <= q_code[q_i];
            any_violation = 1'b1;
            violation <= 1'b1;
            if (FATAL != 0)
                $fatal(1, "sdram_model: stopped on the %0s violation", rule_name(q_code[q_i]));
            q_i = q_i + 1;
        end
        q_n = 0;

        edges = edges + 64'd1;
        cycle <= edges;
    end
    /* verilator lint_on BLKSEQ */

endmodule

`default_nettype wire
