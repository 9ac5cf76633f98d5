"""`tinygrad-yolo gradcheck`: hypothesis-driven float64 gradient checks of every
registered op (tinygrad_yolo.checks) on CPU or GPU, as a table or JSON lines."""
import json
import sys
import time

from . import UserError


def add_arguments(parser):
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--ops", default="",
                        help="comma-separated case names (default: all); see --list")
    parser.add_argument("--examples", type=int, default=100,
                        help="hypothesis examples per op (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float64", choices=["float64"],
                        help="checks run in float64: central differences in float32 are too coarse")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per op instead of a table")
    parser.add_argument("--list", action="store_true", help="list the registered checks and exit")


def _check_op(name, device, examples, seed):
    """Run hypothesis on one case; returns a report dict (with the shrunk failure, if any)."""
    from hypothesis import HealthCheck, given, settings, strategies as st
    from hypothesis import seed as hypothesis_seed

    from ..checks import build_example, check_example, repro_line

    report = {"op": name, "examples": 0, "max_abs_err": 0.0, "max_rel_err": 0.0, "ok": True}
    last_failure = {}

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              print_blob=False, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        fn, arrays, params = build_example(name, data.draw)
        result = check_example(name, fn, arrays, device=device)
        report["examples"] += 1
        report["max_abs_err"] = max(report["max_abs_err"], result.max_abs_err)
        report["max_rel_err"] = max(report["max_rel_err"], result.max_rel_err)
        if not result.ok:
            # hypothesis replays the smallest failing example last, so this ends up holding it
            last_failure.update(params=params,
                                where=f"input {result.worst_input} {result.worst_where}",
                                analytic=result.analytic, numeric=result.numeric,
                                repro=repro_line(name, params, device))
            raise AssertionError(result.message())

    try:
        run()
    except Exception as e:  # a gradient mismatch, or the op itself raising
        report["ok"] = False
        report["failure"] = dict(last_failure) or {"error": f"{type(e).__name__}: {e}"}
    return report


def run(args):
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        print("tinygrad-yolo gradcheck needs hypothesis; install it with: "
              "pip install 'tinygrad_yolo[test]'", file=sys.stderr)
        return 1
    from ..backend import xp_for
    from ..checks import CASES

    if args.list:
        print("\n".join(sorted(CASES)))
        return 0
    if args.examples < 1:
        raise UserError("--examples must be at least 1")
    names = [n.strip() for n in args.ops.split(",") if n.strip()] or sorted(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise UserError(f"unknown op(s) {', '.join(unknown)}; known: {', '.join(sorted(CASES))}")
    if args.device == "cuda":
        try:
            xp_for("cuda")
        except RuntimeError as e:
            raise UserError(str(e)) from None

    start, reports = time.perf_counter(), []
    if not args.json:
        print(f"{'op':<22}{'examples':>9}{'max abs err':>14}{'max rel err':>14}  result")
    for name in names:
        r = _check_op(name, args.device, args.examples, args.seed)
        reports.append(r)
        if args.json:
            print(json.dumps(r, default=str), flush=True)
        else:
            print(f"{name:<22}{r['examples']:>9}{r['max_abs_err']:>14.2e}"
                  f"{r['max_rel_err']:>14.2e}  {'pass' if r['ok'] else 'FAIL'}", flush=True)
    failed = [r for r in reports if not r["ok"]]
    if not args.json:
        print(f"\n{len(reports) - len(failed)} passed, {len(failed)} failed on {args.device} "
              f"in {time.perf_counter() - start:.1f} s")
        print_failures(failed)
    return 1 if failed else 0


def print_failures(failed):
    """Each failing op's smallest failing example and how to reproduce it, on stderr."""
    for r in failed:
        f = r["failure"]
        print(f"\nFAIL {r['op']}:", file=sys.stderr)
        if "error" in f:
            print(f"  {f['error']}", file=sys.stderr)
        else:
            print(f"  smallest failing example: {f['params']}\n"
                  f"  worst at {f['where']}: analytic {f['analytic']:.10g} vs numeric "
                  f"{f['numeric']:.10g}\n"
                  f"  reproduce: python -c \"{f['repro']}\"", file=sys.stderr)
