#!/usr/bin/python3
"""profile_check.py - independent checks of what `smallmind profile`, `run
--profile` and `train --profile` write, for tests/profile_tools_test.sh.
Each subcommand prints its findings and exits 1 when a check fails.

  trace TRACE.json [REPORT.json]   the Chrome trace-event format (Google's
      "Trace Event Format" document): a JSON object with traceEvents; complete
      events (ph X) with name, ts, dur >= 0, pid, tid; thread_name metadata for
      every thread used; per thread, events in order of ts and properly nested
      (no partial overlap); counters (ph C) with numeric args; otherData with
      the ring's size and no dropped events. With a report: the main thread's
      step events, per step name, have the report's self and inclusive times
      within 1 %, and each of the report's worker threads has task spans.
  folded FOLDED REPORT.json        the folded stacks add up to the report's
      self times within 1 %, and every stack is a path of the report's tree.
  flame FLAME.svg NAME...          the SVG parses as XML and names the steps.
  roofline REPORT.json [compute|memory]   no step far above its ceiling (the
      ceiling_wrong flag and the percentages agree); with a bound, the first
      step (most self time) is judged that bound.
  int8 REPORT.json float|quantized which peak bounds the products: with
      quantized weights (Q8_0, Q4_0) on the avx512 kernels the prompt's
      projections ran as 8-bit integer dots and are judged against the
      measured int8 peak; with float weights, or without that peak, none is.
  train PROFILE.json [f32|bf16]    the operations' self times cover >= 95 %
      of the timed steps' wall time, the profiler's cost from its cost per
      scope is <= 3 % of a step; prints the measured overhead. The weight
      products are judged against the FMA peak, or with bf16 (--bf16) as
      BF16 dots against the measured BF16 peak (attention stays FMA).
"""
import json
import sys
import xml.etree.ElementTree as ET

problems = []


def bad(msg):
    problems.append(msg)


def report_totals(report):
    """Per step name: (self ms, inclusive ms over rows not nested in a row of the same name)."""
    rows = report["scopes"]
    self_ms, incl_ms = {}, {}
    for i, r in enumerate(rows):
        self_ms[r["name"]] = self_ms.get(r["name"], 0) + r["self_ms"]
        p, nested = r["parent"], False
        while p >= 0:
            if rows[p]["name"] == r["name"]:
                nested = True
            p = rows[p]["parent"]
        if not nested:
            incl_ms[r["name"]] = incl_ms.get(r["name"], 0) + r["incl_ms"]
    return self_ms, incl_ms


def check_trace(path, report_path=None):
    d = json.load(open(path))
    if not isinstance(d, dict) or not isinstance(d.get("traceEvents"), list):
        bad("not a JSON object with a traceEvents array")
        return
    ev = d["traceEvents"]
    names = {}
    by_tid = {}
    counters = {}
    for e in ev:
        ph = e.get("ph")
        if ph not in ("X", "M", "C"):
            bad("unexpected phase %r" % ph)
            continue
        if not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"), int):
            bad("event without integer pid/tid: %r" % e)
            continue
        if ph == "M":
            if e.get("name") == "thread_name":
                names[e["tid"]] = e["args"]["name"]
            continue
        if not isinstance(e.get("ts"), (int, float)):
            bad("event without ts: %r" % e)
            continue
        if ph == "C":
            args = e.get("args")
            if not isinstance(args, dict) or not args or not all(isinstance(v, (int, float)) for v in args.values()):
                bad("counter without numeric args: %r" % e)
            counters.setdefault(e["name"], []).append(e["ts"])
            continue
        if not isinstance(e.get("name"), str) or not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
            bad("complete event without a name or a duration >= 0: %r" % e)
            continue
        by_tid.setdefault(e["tid"], []).append(e)
    eps = 0.0015   # the file has nanoseconds as microseconds with 3 decimals
    for tid, es in by_tid.items():
        if tid not in names:
            bad("thread %d has events but no thread_name" % tid)
        stack = []
        last = -1e300
        for e in es:
            if e["ts"] < last - eps:
                bad("thread %d: timestamps go back at %s (%.3f after %.3f)" % (tid, e["name"], e["ts"], last))
                break
            last = e["ts"]
            end = e["ts"] + e["dur"]
            while stack and stack[-1][1] <= e["ts"] + eps:
                stack.pop()
            if stack and end > stack[-1][1] + eps:
                bad("thread %d: %s [%.3f, %.3f] overlaps %s ending at %.3f without nesting" %
                    (tid, e["name"], e["ts"], end, stack[-1][0], stack[-1][1]))
                break
            stack.append((e["name"], end))
    for name, ts in counters.items():
        if any(b < a for a, b in zip(ts, ts[1:])):
            bad("counter %s goes back in time" % name)
    for c in ("tokens/s", "bytes allocated") if report_path else ():
        if c not in counters:
            bad("no %s counter" % c)
    other = d.get("otherData", {})
    if not isinstance(other.get("ring_events_per_thread"), int) or other.get("events_dropped") is None:
        bad("otherData does not state the ring's size and the dropped events")
    elif other["events_dropped"] != 0:
        bad("%d events were dropped" % other["events_dropped"])
    main = [t for t, n in names.items() if n == "main"]
    if not main:
        bad("no thread named main")
        return
    print("trace: %d events, %d threads (%s), counters %s" %
          (len(ev), len(by_tid), ", ".join(sorted(names.values())), ", ".join(sorted(counters))))
    if not report_path:
        return
    report = json.load(open(report_path))
    threads = report["system"]["threads"] if "system" in report else report["summary"]["threads"]
    workers = [t for t, n in names.items() if n.startswith("worker")]
    if len(workers) != threads - 1:
        bad("%d worker threads in the trace, the report ran %d threads" % (len(workers), threads))
    if threads > 1 and not any(e.get("cat") == "task" for t in workers for e in by_tid.get(t, [])):
        bad("no worker thread with task spans")
    # self time per step on the main thread, from the nesting of its step events
    steps = [e for e in by_tid.get(main[0], []) if e.get("cat") == "step"]
    t_self, t_incl = {}, {}
    stack = []
    for e in steps:
        end = e["ts"] + e["dur"]
        while stack and stack[-1][1] <= e["ts"] + eps:
            stack.pop()
        t_self[e["name"]] = t_self.get(e["name"], 0) + e["dur"]
        if stack:
            t_self[stack[-1][0]] -= e["dur"]
        if not any(s[0] == e["name"] for s in stack):
            t_incl[e["name"]] = t_incl.get(e["name"], 0) + e["dur"]
        stack.append((e["name"], end))
    r_self, r_incl = report_totals(report)
    calls = {}
    for r in report["scopes"]:
        calls[r["name"]] = calls.get(r["name"], 0) + r["calls"]
    total_r = sum(v for k, v in r_self.items() if k != "load")
    total_t = sum(t_self.values()) / 1000
    worst = 0
    for name, ms in r_self.items():
        if name == "load":
            continue
        got = t_self.get(name, 0) / 1000
        slack = max(0.01 * ms, 2e-6 * calls.get(name, 0))   # 1 %, or 2 ns a call of rounding
        if abs(got - ms) > slack:
            bad("step %s: trace self %.4f ms, report %.4f ms" % (name, got, ms))
        got_i = t_incl.get(name, 0) / 1000
        if abs(got_i - r_incl[name]) > max(0.01 * r_incl[name], 2e-6 * calls.get(name, 0)):
            bad("step %s: trace inclusive %.4f ms, report %.4f ms" % (name, got_i, r_incl[name]))
        worst = max(worst, abs(got - ms) / ms if ms > 0 else 0)
    if abs(total_t - total_r) > 0.01 * total_r:
        bad("all self time: trace %.3f ms, report %.3f ms" % (total_t, total_r))
    print("trace totals: %.3f ms against the report's %.3f ms; worst step %.3f %%" % (total_t, total_r, 100 * worst))


def check_folded(path, report_path):
    report = json.load(open(report_path))
    rows = report["scopes"]

    def frame(r):
        return "layer %d" % r["layer"] if r["name"] == "layer" and r["layer"] >= 0 else r["name"]

    paths = set()
    for i, r in enumerate(rows):
        chain, p = [], i
        while p >= 0:
            chain.append(frame(rows[p]))
            p = rows[p]["parent"]
        paths.add(";".join(reversed(chain)))
    total = 0
    n = 0
    for line in open(path):
        line = line.rstrip("\n")
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            bad("not a folded line: %r" % line)
            continue
        if stack not in paths:
            bad("stack %r is no path of the report's tree" % stack)
        total += int(count)
        n += 1
    want = sum(r["self_ms"] for r in rows) * 1000
    print("folded: %d stacks, %d us against the report's %.0f us of self time" % (n, total, want))
    if abs(total - want) > 0.01 * want:
        bad("folded stacks add up to %d us, the report's self times to %.0f us" % (total, want))


def check_flame(path, names):
    root = ET.parse(path).getroot()
    if not root.tag.endswith("svg"):
        bad("the root element is not svg")
    titles = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title"))
    rects = list(root.iter("{http://www.w3.org/2000/svg}rect"))
    for n in names:
        if n not in titles:
            bad("the flame graph does not name %s" % n)
    print("flame: %d boxes" % len(rects))
    if len(rects) < 10:
        bad("only %d boxes" % len(rects))


def check_roofline(path, bound=None):
    report = json.load(open(path))
    roof = report["roofline"]
    if not roof:
        bad("no roofline")
        return
    for r in roof:
        over = r["pct_of_bandwidth"] > 100 or (r["fma"] and r["pct_of_peak"] > 100)
        # a step and its ceiling are two measurements on a shared machine (on
        # a VM whose cache is shared with other guests they drift apart by a
        # few tens of percent); far above the ceiling means the wrong level.
        # A pooled step is judged against the all-threads ceiling of a shared
        # level, measured only from samples in which the threads overlapped:
        # the noisier figure (the Zen 3 VM's two-thread L3 read 82-127 GB/s in
        # three successive runs of one build, while the --deep model's decode
        # products read 57-137), so it gets 2x, still under the gap to the
        # level below (L3 to memory 2.3-3.5x there)
        limit = 200 if r["threads"] > 1 else 150
        far = r["pct_of_bandwidth"] > limit or (r["fma"] and r["pct_of_peak"] > 150)
        if far:
            bad("%s (%s) above its %s ceiling: %.1f %% of %.1f GB/s, %.1f %% of the FMA peak" %
                (r["step"], r["phase"], r["level"], r["pct_of_bandwidth"], r["ceiling_gbps"], r["pct_of_peak"]))
        if over != r["ceiling_wrong"]:
            bad("%s: ceiling_wrong says %s" % (r["step"], r["ceiling_wrong"]))
        # the ceiling is the level's, for the threads it ran on
        m = report["machine"]
        # the compute ceiling is the FMA peak, or the int8 peak for integer dots, or the BF16 one for BF16 dots
        kind = "int8" if r.get("int8") else "BF16" if r.get("bf16") else "FMA"
        peak = m[{"int8": "peak_int8_gops", "BF16": "peak_bf16_gflops", "FMA": "peak_gflops"}[kind]]
        peak = peak[1 if r["threads"] > 1 else 0]
        if r["fma"] and abs(peak - r["ceiling_gflops"]) > 1e-3 * max(1, peak):
            bad("%s: compute ceiling %.3f is not the machine's %s peak %.3f" % (r["step"], r["ceiling_gflops"], kind, peak))
        want = m["read_gbps"][r["level"]][1 if r["threads"] > 1 else 0]
        if abs(want - r["ceiling_gbps"]) > 1e-3 * max(1, want):
            bad("%s: ceiling %.3f GB/s is not the machine's %s figure %.3f" % (r["step"], r["ceiling_gbps"], r["level"], want))
    first = roof[0]
    print("roofline: %d steps; first %s (%s): %s bound against %s, %.1f %% of bandwidth, %.1f %% of peak" %
          (len(roof), first["step"], first["phase"], first["bound"], first["level"], first["pct_of_bandwidth"],
           first["pct_of_peak"]))
    if bound and first["bound"] != bound:
        bad("the first step %s is judged %s bound, not %s" % (first["step"], first["bound"], bound))


def check_int8(path, weights):
    report = json.load(open(path))
    int8_peak = report["machine"].get("peak_int8_gops", [0, 0])[0] > 0
    expect = weights == "quantized" and report["system"]["kernels"] == "avx512" and int8_peak
    prods = [r for r in report["roofline"] if r["phase"] == "prefill" and r["step"].endswith("projection")]
    if not prods:
        bad("no projection in the prompt's roofline")
    m = report["machine"]
    for r in prods:
        if bool(r.get("int8")) != expect:
            bad("%s (prefill) int8 %s, expected %s" % (r["step"], r.get("int8"), expect))
        peak = m["peak_int8_gops" if expect else "peak_gflops"][1 if r["threads"] > 1 else 0]
        if abs(peak - r["ceiling_gflops"]) > 1e-3 * max(1, peak):
            bad("%s (prefill): compute ceiling %.3f, not the %s peak %.3f" %
                (r["step"], r["ceiling_gflops"], "int8" if expect else "FMA", peak))
    for r in report["roofline"]:
        if r.get("int8") and not r["fma"]:
            bad("%s: int8 but not multiply-adds" % r["step"])
    print("int8: %d prompt projections, int8 %s (kernels %s, int8 peak %s)" %
          (len(prods), expect, report["system"]["kernels"], report["machine"].get("peak_int8_gops")))


def check_train(path, precision="f32"):
    d = json.load(open(path))
    # which peak bounds each product: mixed precision's weight products (the projections and the logits) are
    # BF16 dots, judged against the measured BF16 peak; attention and the F32 run's products against the FMA's
    prods = [r for r in d["roofline"] if r["step"].endswith("projection") or r["step"] == "logits"]
    if not prods:
        bad("no projection in the roofline")
    for r in d["roofline"]:
        want = precision == "bf16" and r in prods
        if bool(r.get("bf16")) != want:
            bad("%s (%s) bf16 %s, expected %s" % (r["step"], r["phase"], r.get("bf16"), want))
        peak = d["machine"]["peak_bf16_gflops" if want else "peak_gflops"][1 if r["threads"] > 1 else 0]
        if r["fma"] and abs(peak - r["ceiling_gflops"]) > 1e-3 * max(1, peak):
            bad("%s (%s): compute ceiling %.3f, not the %s peak %.3f" %
                (r["step"], r["phase"], r["ceiling_gflops"], "BF16" if want else "FMA", peak))
    s = d["summary"]
    print("train: %d timed and %d paused steps, operations cover %.2f %% of the wall time, overhead %.3f %% "
          "measured, %.4f %% from %.1f ns a scope" % (s["steps_profiled"], s["steps_paused"], s["coverage_pct"],
                                                    s["overhead_pct"], s["overhead_estimate_pct"], s["scope_ns"]))
    print("overhead %.4f" % s["overhead_pct"])
    # the profiler's own cost: steady, so it must be within 3 % every time
    if s["overhead_estimate_pct"] > 3:
        bad("the profiler's cost is %.2f %% of a step (%.1f scopes at %.1f ns)" %
            (s["overhead_estimate_pct"], s["scopes_per_step"], s["scope_ns"]))
    if s["coverage_pct"] < 95:
        bad("the operations cover %.2f %% of the step" % s["coverage_pct"])
    names = {r["name"] for r in d["scopes"]}
    for n in ("forward", "backward", "optimizer", "loss", "attention (batch)", "FFN down projection", "layer"):
        if n not in names:
            bad("no scope %s" % n)
    mem = d["memory"]
    if not all(mem[k] > 0 for k in ("parameters", "gradients", "moments", "activations")):
        bad("memory blocks missing: %r" % mem)
    # self and attributed times from the scopes themselves
    attributed = sum(r["self_ms"] for r in d["scopes"] if r["kind"] != 0)
    if abs(attributed - s["attributed_ms"]) > 1e-3 * max(1, attributed):
        bad("attributed %.3f ms from the scopes, %.3f in the summary" % (attributed, s["attributed_ms"]))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "trace":
        check_trace(args[0], args[1] if len(args) > 1 else None)
    elif cmd == "folded":
        check_folded(args[0], args[1])
    elif cmd == "flame":
        check_flame(args[0], args[1:])
    elif cmd == "roofline":
        check_roofline(args[0], args[1] if len(args) > 1 else None)
    elif cmd == "int8":
        check_int8(args[0], args[1])
    elif cmd == "train":
        check_train(args[0], args[1] if len(args) > 1 else "f32")
    else:
        sys.exit("unknown check " + cmd)
    for p in problems[:20]:
        print("problem: " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
