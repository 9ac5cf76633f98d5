"""Step 3 - broadcasting's sum-to-shape: undo a broadcast in the backward.

When an op broadcasts an input (a bias of shape (C,) added to an (N, C) batch), every
element of that input was used once per broadcast copy, so its gradient is the sum of the
gradients of all the copies. The engine does this in one place for every op: an op's
backward may return a gradient in the broadcast shape, and ``sum_to`` sums it back down to
the input's shape. NumPy aligns shapes at the right and stretches missing leading axes and
sides of 1; undo both.

The checks run the project's own gradient checks of add, sub, mul and div (broadcasting
shapes drawn by hypothesis) with your sum_to inside tinygrad_yolo's backward().

What the checks rely on: ``sum_to(g, shape)`` returns an array of exactly ``shape`` (a
tuple; ``()`` for a 0-d input, so return a 0-d array, not a float or shape (1,)); the
engine calls it for an input whose gradient came back in another shape than the input's.

Check it: pytest exercises -m step3          (the reference: exercises/solutions/step3_broadcast.py)
Read alongside: docs/walkthrough.md, section 3 ("Broadcasting is undone in one place").
"""
from exercises import ExerciseNotDone


def sum_to(g, shape):
    """Sum the array ``g`` (of a shape ``shape`` broadcasts to) back down to ``shape``."""
    raise ExerciseNotDone("step 3: write sum_to (sum the extra leading axes away, then sum with "
                          "keepdims=True where shape has a 1)")
