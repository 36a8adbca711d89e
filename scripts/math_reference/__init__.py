"""Reference MATH graders, written for evalkit from their published definitions, to measure
evalkit's `math` scorer against (scripts/bench_math_equiv.py, tests/unit/test_math_reference.py).

- `hendrycks`: hendrycks/math `modeling/math_equivalence.py` (`is_equiv`, `_strip_string`) and
  `modeling/dataset/util.py` (`last_boxed_only_string`, `remove_boxed`), at 985bdc16.
- `prm800k`: openai/prm800k `prm800k/grading/grader.py` (`grade_answer`) and `math_normalize.py`,
  at 7ecc7947.

These are not part of evalkit: nothing under evalkit/ imports them. They follow the originals
step by step, quirks included (an assertion that fails on two `\\text{ ` makes Hendrycks fall back
to comparing the raw strings; PRM800K's `\\text{...}` regex is non-greedy), because a reference
that "fixes" its original measures nothing.
"""
