"""exercises/ can never rot: its checks (exercises/test_steps.py) run here, in CI, against the
reference solutions in exercises/solutions/; the stubs a student starts from must keep the
solutions' names and signatures and the same given code; and a student's own run of one
step (stubs selected by default) fails with the step's ExerciseNotDone message."""
import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import exercises  # noqa: E402
from exercises import test_steps  # noqa: E402

exercises.SOURCE = "solutions"  # what the checks below load, unless EXERCISES says otherwise

# The exercise checks themselves, collected as tests of this module (markers step1..step9).
globals().update({name: getattr(test_steps, name)
                  for name in dir(test_steps) if name.startswith("test_")})
trained = test_steps.trained  # step 9's fixture: one training run for its three checks

STEPS = sorted(p.stem for p in (ROOT / "exercises").glob("step*.py"))


def test_there_are_nine_steps_in_the_walkthrough_order():
    assert STEPS == ["step1_scalar", "step2_function", "step3_broadcast", "step4_relu_mul",
                     "step5_conv", "step6_batchnorm", "step7_residual", "step8_yolo_loss",
                     "step9_train"]
    assert sorted(p.stem for p in (ROOT / "exercises" / "solutions").glob("step*.py")) == STEPS
    checks = inspect.getsource(test_steps)
    for n in range(1, 10):
        assert f"@pytest.mark.step{n}\n" in checks, f"no check is marked step{n}"


def definitions(path):
    """{qualified name: (signature text, source text, raises ExerciseNotDone)} of the module's
    own top-level functions and classes' methods."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = {}

    def visit(nodes, prefix=""):
        for node in nodes:
            if isinstance(node, ast.ClassDef):
                out[prefix + node.name] = ("class", "", False)
                visit(node.body, prefix + node.name + ".")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = ast.unparse(node)
                out[prefix + node.name] = (ast.unparse(node.args), body,
                                           "raise ExerciseNotDone" in body)
    visit(tree.body)
    return out


@pytest.mark.parametrize("step", STEPS)
def test_the_stub_matches_its_solution(step):
    stub = definitions(ROOT / "exercises" / f"{step}.py")
    solution = definitions(ROOT / "exercises" / "solutions" / f"{step}.py")
    assert set(stub) == set(solution), f"{step}: the stub and the solution define different names"
    todo = [name for name, (_, _, raises) in stub.items() if raises]
    assert todo, f"{step}: the stub leaves nothing to write"
    for name, (args, body, raises) in stub.items():
        assert args == solution[name][0], (
            f"{step}: {name} takes other arguments in the stub and the solution")
        assert not solution[name][2], f"{step}: the solution's {name} is still a stub"
        if not raises:  # given code: the same in both
            assert body == solution[name][1], (
                f"{step}: the given {name} differs from the solution's")


def run_pytest(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "exercises", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_a_students_run_checks_their_own_files():
    env = {k: v for k, v in os.environ.items() if k != "EXERCISES"}
    mine = run_pytest("-m", "step3", env=env)
    assert mine.returncode == 1, mine.stdout + mine.stderr
    assert "exercises/step3_broadcast.py" in mine.stdout
    assert "ExerciseNotDone: step 3: write sum_to" in mine.stdout
    solutions = run_pytest("--solutions", "-m", "step3", env=env)
    assert solutions.returncode == 0, solutions.stdout + solutions.stderr
    assert "5 passed" in solutions.stdout


class ForgetfulMul(test_steps.tg.function.Function):
    """A student's Mul that forgets the local derivative: it hands g on unchanged, as Add does."""
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        return g, g


def test_a_failing_check_replays_the_students_op_not_the_projects(monkeypatch, capsys):
    import re
    import types

    from hypothesis import given, settings, strategies as st

    mine = types.SimpleNamespace(Mul=ForgetfulMul)
    monkeypatch.setattr(test_steps, "load", lambda step: mine)
    monkeypatch.setattr(exercises, "load", lambda step: mine)
    messages = []

    @settings(max_examples=1, database=None, derandomize=True)
    @given(data=st.data())
    def check(data):
        with pytest.raises(AssertionError) as failure:
            test_steps.run_registered_case(
                "mul", data, [("tinygrad_yolo.ops.elementwise", "Mul", "step4_relu_mul", "Mul")])
        messages.append(str(failure.value))

    check()
    message = messages[0]
    assert "hypothesis drew: " in message and "shape" in message
    # the failure names the shape hypothesis drew for the worst input: () stays (), not (1,)
    import ast
    drawn = ast.literal_eval(re.search(r"shapes=(.*?), a_seed", message).group(1))
    worst, shape = re.search(r"for input (\d) \(shape (\([^)]*\))\)", message).groups()
    assert shape == str(tuple(drawn[int(worst)]))
    line = re.search(r"replay with your code: (.*)", message).group(1)
    exec(line, {})  # the line prints the replayed example's result: it fails, as the check did
    assert "ok=False" in capsys.readouterr().out
