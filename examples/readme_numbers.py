"""The numbers in examples/README.md, written from the demos' own output.

Every demo writes what it measured to ``<out>/<demo>.json``. The full-size runs behind the
README are kept in examples/results/ (one JSON per run below); this script turns them into
the README's "What they printed" section, so no number there is typed by hand:

    python examples/readme_numbers.py             # rewrite the section from examples/results/
    python examples/readme_numbers.py --run       # rerun every demo at full size first (slow)
    python examples/readme_numbers.py --run 04 09                # ... or the runs named so
    python examples/readme_numbers.py --run 04_degradation_seed1 # ... or exactly that run
    python examples/readme_numbers.py --check     # exit 1 if the README is not what they say

tests/test_examples.py checks that the README matches the results, that each result was made
by the current version of its demo (a fingerprint of the demo's source is recorded with it),
and reruns the cheap demos at full size to see that they still print the same.
"""
import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
BEGIN = ("<!-- numbers: written by examples/readme_numbers.py from examples/results/*.json; "
         "do not edit -->")
END = "<!-- numbers: end -->"

# (name of the recorded run, demo, extra flags): the full-size runs the README quotes.
RUNS = (("01_residual_split", "01_residual_split", []),
        ("02_identity_default", "02_identity_default", []),
        ("03_gradient_superhighway", "03_gradient_superhighway", []),
        ("04_degradation", "04_degradation", []),
        ("04_degradation_seed1", "04_degradation", ["--seed", "1"]),
        ("04_degradation_seed2", "04_degradation", ["--seed", "2"]),
        ("04_degradation_800_steps", "04_degradation", ["--steps", "800"]),
        ("04_degradation_zero_init", "04_degradation", ["--zero-init-residual"]),
        ("05_superres_residual", "05_superres_residual", []),
        ("06_yolo_progression", "06_yolo_progression", []),
        ("07_sqrt_wh", "07_sqrt_wh", []),
        ("08_lambda_noobj", "08_lambda_noobj", []),
        ("09_yolo_gradients", "09_yolo_gradients", []))


def run_demo(demo, argv):
    """Import examples/<demo>.py and run its main(argv); returns its results."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the demos import demo_common from beside them
    spec = importlib.util.spec_from_file_location(f"example_{demo}", HERE / f"{demo}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def record(prefixes, out_root):
    """Rerun the runs whose name starts with one of ``prefixes`` (all when empty) at full
    size; keep their JSON in examples/results/ and their figures under ``out_root``."""
    RESULTS.mkdir(exist_ok=True)
    names = [name for name, _, _ in RUNS]
    for name, demo, flags in RUNS:
        # a run's full name picks that run alone; anything else is a prefix ("04": all of demo 4's)
        picked = any(name == p or (p not in names and name.startswith(p)) for p in prefixes)
        if prefixes and not picked:
            continue
        print(f"== {name}: python examples/{demo}.py {' '.join(flags)}", flush=True)
        out = Path(out_root) / name
        run_demo(demo, flags + ["--out", str(out)])
        # what the demo wrote, as plain JSON
        results = json.loads((out / f"{demo}.json").read_text())
        results["figures"] = [Path(f).name for f in results["figures"]]  # not this machine's paths
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")


def load():
    """The recorded runs there are (a demo changed since its run was recorded has none: its
    stale result is deleted, and the README says the run is missing)."""
    return {name: json.loads((RESULTS / f"{name}.json").read_text()) for name, _, _ in RUNS
            if (RESULTS / f"{name}.json").is_file()}


# ---- how each number is said ------------------------------------------------------------
def num(x, digits=3):
    """0 stays 0; otherwise `digits` significant digits, thousands separated."""
    if x == 0:
        return "0"
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{float(text):,}" if abs(x) >= 1000 else text


def times(x):
    return f"{num(x, 2)}x"


def seconds(r):
    """The run's CPU time (all threads): wall time on a shared machine says more about the
    neighbours than about the demo."""
    s = r["cpu_seconds"]
    return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"


def below(x, bound):
    """"below ``bound``" while ``x`` is: what a rounding error is said as, since its digits
    move with the CPU (1e-9 on one x86 CPU, 1.8e-9 on another) and the bound does not."""
    return f"below {num(bound)}" if x < bound else num(x)


def signed(x, digits=2):
    return f"{x:+.{digits}f}".replace("-", "−")


def demo1(r):
    i, p, e = r["identity"], r["projection"], r["elements"]
    return (f"Identity block, x of shape {tuple(r['x_shape'])}, float64: |dL/dy| = "
            f"{num(i['norm_dy'])}, |branch part| = {num(i['norm_branch'])}, |dL/dx| = "
            f"{num(i['norm_dx'])}, max |dL/dx − (branch + skip)| = {num(i['max_abs_error'])} and "
            f"max |skip part − dL/dy| = {num(i['skip_minus_dy'])}. Central differences agree with "
            f"backward() to a relative error {below(i['numeric_relative_error'], 1e-8)} along a "
            f"random direction ({below(p['numeric_relative_error'], 1e-8)} for the stride-2 "
            f"projection block) and {below(e['max_relative_error'], 1e-8)} element by element on "
            f"the figure's {e['count']} elements. {e['relu_off']} of those {e['count']} have y ≤ "
            f"0, where the final ReLU zeroes dL/dy: there the skip part is 0 and the branch part "
            f"is not ({e['branch_nonzero_where_off']} of {e['relu_off']}). The sum is exact "
            f"because it is how `backward()` builds dL/dx: a tensor used twice gets both "
            "contributions added; the central differences are the independent check.")


def demo2(r):
    return (f"max |block(x) − x| = {num(r['output_minus_input'])}, max |dL/dx − dL/dy| = "
            f"{num(r['grad_minus_upstream_where_positive'])} where x > 0 (and dL/dx = "
            f"{num(r['grad_where_zero'])} where x = 0); the same for ResNet-56's 9-block `layer1` "
            f"({num(r['stage_output_minus_input'])} and "
            f"{num(r['stage_grad_minus_upstream_where_positive'])}). Only the zeroed BN scale and "
            f"its shift get a gradient (|d bn2.weight| = "
            f"{num(r['param_grad_norms']['bn2.weight'])}, |d conv1.weight| = "
            f"{num(r['param_grad_norms']['conv1.weight'])}), so the first update switches the "
            f"branch on. The plain block outputs {num(r['plain_output_max'])} and passes "
            f"{num(r['plain_grad_max'])}; with the default init max |block(x) − x| = "
            f"{num(r['default_init_output_minus_input'])}.")


def demo3(r):
    tp, tr, ep, er = r["train_plain56"], r["train_resnet56"], r["eval_plain56"], r["eval_resnet56"]
    grows = "*explodes*" if tp["first_over_last"] > 1 else "*vanishes*"
    return (f"With BatchNorm in training mode (how the nets train), the plain net's gradient "
            f"{grows} towards the input: |dL/d block output| changes "
            f"{times(tp['first_over_last'])} from the last block to the first (|dL/d input| = "
            f"{num(tp['input_grad_norm'])}), ResNet-56's {times(tr['first_over_last'])} (|dL/d "
            f"input| = {num(tr['input_grad_norm'])}). He et al. (2016, §4.1) say as much: with BN "
            f"the plain nets' gradients do not vanish, and their degradation is an optimisation "
            f"difficulty. With BatchNorm at its initial statistics (no normalisation) the plain "
            f"net's input gradient is {num(ep['input_grad_norm'], 2)} and ResNet-56's "
            f"{times(er['input_grad_norm'] / ep['input_grad_norm'])} larger, but ResNet-56 is "
            f"unhealthy too: its forward blows up (loss {num(er['loss'], 4)}) and its gradient "
            f"changes {times(er['first_over_last'])} towards the input. A vanishing gradient does "
            f"appear in the synthetic 50-block stack without normalisation whose branches have "
            f"gain ~1e-4: without skips |dL/d input| / |dL/d output| = "
            f"{num(r['stack_plain']['input_over_output'], 2)}, with skips "
            f"{num(r['stack_skip']['input_over_output'], 4)}.")


def demo4(runs):
    seeds = [runs["04_degradation"], runs["04_degradation_seed1"], runs["04_degradation_seed2"]]
    long, zero = runs["04_degradation_800_steps"], runs["04_degradation_zero_init"]
    k, steps = seeds[0]["last_k"], seeds[0]["steps"]
    row = lambda net: " / ".join(f"{s[net]['final']:.2f}" for s in seeds)  # noqa: E731
    plain = [s["plain56"]["final"] - s["plain20"]["final"] for s in seeds]
    res = [s["resnet56"]["final"] - s["resnet20"]["final"] for s in seeds]
    at56 = [s["resnet56"]["final"] - s["plain56"]["final"] for s in seeds]
    worse = sum(d > 0 for d in plain)
    plain_says = ("The deeper plain net trains worse in every run" if worse == 3 else
                  f"The deeper plain net trains worse in {worse} of the 3 runs")
    ahead = sum(d > 0 for d in res)
    res_says = ("ResNet-56 is level with or ahead of ResNet-20 in every run" if ahead == 0 else
                f"ResNet-56 is behind ResNet-20 in {ahead} of the 3 runs")
    long_gap = long["resnet56"]["final"] - long["resnet20"]["final"]
    return (f"Mean loss over the last {k} of {steps} steps, seeds 0 / 1 / 2: plain-20 "
            f"{row('plain20')}, plain-56 {row('plain56')}, ResNet-20 {row('resnet20')}, ResNet-56 "
            f"{row('resnet56')}. {plain_says} ({' / '.join(signed(d) for d in plain)}): "
            f"degradation. ResNet-56 against plain-56: {' / '.join(signed(d) for d in at56)}. "
            f"{res_says} ({' / '.join(signed(d) for d in res)}); after {long['steps']} steps (seed "
            f"0) ResNet-56 reaches {long['resnet56']['final']:.2f} against ResNet-20's "
            f"{long['resnet20']['final']:.2f} ({signed(long_gap)}), plain-56 "
            f"{long['plain56']['final']:.2f} and plain-20 {long['plain20']['final']:.2f}. He et "
            f"al. report the deeper ResNet's lower training error after full training (64k steps), "
            f"which a few minutes of CPU cannot reproduce. With `--zero-init-residual` (every "
            f"block starts as the identity, demo 2) ResNet-56 ends at "
            f"{zero['resnet56']['final']:.2f} and ResNet-20 at {zero['resnet20']['final']:.2f}. "
            f"These runs are chaotic in the float rounding: any change in an op's summation order "
            "moves the digits, so read the gaps, not the decimals.")


def demo5(r):
    d, s = r["direct"], r["residual"]
    return (f"Held-out MSE after {r['steps']} steps: doing nothing (the upsampled input) "
            f"{num(r['input_mse'])}; y = f(x) {num(d['test_mse'])}; y = x + f(x) "
            f"{num(s['test_mse'])} ({r['direct_over_residual']:.2f}x lower than the direct net's). "
            f"The residual net starts at the input's error (first loss {num(s['first_loss'], 2)}) "
            f"while the direct net starts at {num(d['first_loss'], 2)} and spends its first steps "
            f"learning to copy its input. Its f(x) explains {r['residual_explained']:.0%} of the "
            f"true residual y − x on held-out images (the sample figure shows both).")


def demo6(r):
    stages = [r["S1_B1"], r["S1_B2"], r["S7_B2"]]
    one = r["one_image"]
    maps = ", ".join(f"{s['map50']:.2f}" for s in stages)
    right = ", ".join(f"{s['top_class_accuracy']:.0%}" for s in stages)
    return (f"Output shapes {', '.join(str(tuple(s['output_shape'])) for s in stages)} = "
            f"{stages[2]['outputs']} numbers for the grid. Held-out mAP@0.5 after brief training: "
            f"{maps}; the best detection's class is right in {right} of the images. The 7x7 model "
            "uses a convolutional head (each cell predicted from its own features). On one image "
            f"with {one[2]['objects_in_target']} objects the 1x1 grids' targets keep "
            f"{one[0]['objects_in_target']} (one object per cell), the 7x7 grid's all "
            f"{one[2]['objects_in_target']}.")


def demo7(r):
    rel = r["relative"]
    return (f"Squared error on w, h: {num(r['big']['raw'])} px² for both boxes. On √w, √h: "
            f"{r['big']['sqrt']:.6f} px (20x30 → 18x27) and {r['small']['sqrt']:.6f} px (4x6 → "
            f"2x3), {r['ratio_small_over_big']:.2f}x more for the small box; `YOLOv1Loss` gives "
            f"the same to {below(r['max_loss_difference'], 1e-12)}. At the same relative error "
            f"(10%: 4x6 → 3.6x5.4) the big box costs {num(rel['raw_big_over_small'])}x the small "
            f"one on w, h and still {num(rel['sqrt_big_over_small'])}x on √w, √h: the square root "
            f"only partly evens out box sizes.")


def demo8(r):
    one, half = r["lambda_1"], r["lambda_0.5"]
    summary = r["sweep_summary"]
    by_object = sorted(summary, key=lambda lam: -summary[lam]["object_final"])
    by_empty = sorted(summary, key=lambda lam: summary[lam]["empty_abs_late"])
    steps = r["sweep"]["1"]["step"][-1]
    return (f"{r['images']} images, {r['object_cells']} of {r['cells']} cells hold an object. With "
            f"the grid detector at init, empty cells make {one['share_empty']:.1%} of the "
            f"confidence loss at λnoobj = 1 and {half['share_empty']:.1%} at 0.5; on this batch "
            f"they would fall to half only at λnoobj ≈ {r['break_even_lambda']:.2f}. So 0.5 "
            f"tempers the imbalance without removing it. Trained for {steps} steps with λnoobj = "
            "1, 0.5 and 0.1 (same init, same batches), the responsible predictors' held-out "
            "confidence ends highest with λnoobj = "
            + ", ".join(f"{lam} ({summary[lam]['object_final']:.2f})" for lam in by_object)
            + "; the empty cells' |confidence| over the second half stays closest to 0 with "
            "λnoobj = "
            + ", ".join(f"{lam} ({summary[lam]['empty_abs_late']:.3f})" for lam in by_empty)
            + "; held-out mAP@0.5 "
            + ", ".join(f"{r['sweep'][lam]['map50']:.2f} (λ {lam})" for lam in r["sweep"])
            + ".")


def demo9(r):
    first, last = r["step_0"], r[f"step_{r['steps']}"]
    final_iou = r["track"]["iou"][-1]
    final_resp = r["track"]["responsible"][-1]
    cells = ", ".join(f"({i}, {j}): predictor {p + 1}, IoU {iou[p]:.2f} (other {iou[1 - p]:.2f})"
                      for (i, j), p, iou in zip(r["cells"], final_resp, final_iou))
    exact = max(first[k] for k in ("box_grad_outside_objects", "class_grad_outside_objects",
                                   "box_grad_other_predictor", "coord_formula", "obj_formula",
                                   "noobj_formula", "class_formula"))
    return (f"One image, {last['object_cells']} object cells of 49. dL/d(x, y, √w, √h) is non-zero "
            f"in {first['box_grad_nonzero_cells']} cells, dL/d(conf) in "
            f"{first['conf_grad_nonzero_cells']}; outside the object cells and for the "
            f"non-responsible predictor the box and class gradients are exactly 0, and every "
            f"non-zero one equals its formula's derivative (largest difference {num(exact)}; "
            f"central differences agree to {num(first['numeric']['max_rel_err'], 2)}). After "
            f"{r['steps']} training steps on other images: {cells}. The responsible predictor "
            f"changed {' / '.join(map(str, r['switches']))} times in these cells, "
            f"{' / '.join(map(str, r['tie_switches']))} of them while both IoUs were still 0 (then "
            "the nearer box wins: darknet's rule).")


PARAGRAPHS = (("Residual split", "01_residual_split", demo1),
              ("Identity default", "02_identity_default", demo2),
              ("Gradient by depth", "03_gradient_superhighway", demo3),
              ("Degradation", None, demo4),
              ("Super-resolution", "05_superres_residual", demo5),
              ("YOLO progression", "06_yolo_progression", demo6),
              ("√w, √h", "07_sqrt_wh", demo7), ("λnoobj", "08_lambda_noobj", demo8),
              ("YOLO gradients", "09_yolo_gradients", demo9))


def render(runs):
    """The README section, from the recorded runs."""
    lines = [BEGIN, "",
             "At full size, seed 0 unless said otherwise, as recorded in `examples/results/` "
             "(machine, NumPy and date in each file's `run`). The times in brackets are CPU time "
             "(both cores together, so up to twice the wall time on 2 cores). The numbers of the "
             "training demos (4, 5, 6, 8's sweep, 9) move with any change in an op's float "
             "rounding.", ""]
    for n, (title, name, paragraph) in enumerate(PARAGRAPHS, 1):
        if name is None:
            needed = [run for run, demo, _ in RUNS if demo == "04_degradation"]
        else:
            needed = [name]
        missing = [run for run in needed if run not in runs]
        if missing:
            lines.append(f"{n}. **{title}**: not recorded at full size since the demo last "
                         f"changed; `python examples/readme_numbers.py --run {' '.join(missing)}` "
                         f"records it.")
            continue
        if name is None:  # demo 4: several runs
            body = paragraph(runs)
            took = " / ".join(seconds(runs[k]) for k in ("04_degradation", "04_degradation_seed1",
                                                          "04_degradation_seed2"))
        else:
            body, took = paragraph(runs[name]), seconds(runs[name])
        lines.append(f"{n}. **{title}** ({took}). {body}")
    lines += ["", END]
    return "\n".join(lines)


def replace_section(text, section):
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{README} has no section between {BEGIN!r} and {END!r}")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + section + text[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs="*", default=None, metavar="NAME",
                        help="rerun these recorded runs at full size first (no names: all of them)")
    parser.add_argument("--out", default=None,
                        help="where the reruns' figures go (default: a temporary folder)")
    parser.add_argument("--check", action="store_true",
                        help="only check; exit 1 if the README differs")
    args = parser.parse_args(argv)
    if args.run is not None:
        if args.out:
            record(args.run, args.out)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                record(args.run, tmp)
    text = README.read_text(encoding="utf-8")
    new = replace_section(text, render(load()))
    if args.check:
        if new != text:
            print("examples/README.md differs from what examples/results/ say: run python "
                  "examples/readme_numbers.py")
            return 1
        print("examples/README.md matches examples/results/")
        return 0
    README.write_text(new, encoding="utf-8")
    print(f"wrote the numbers into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
