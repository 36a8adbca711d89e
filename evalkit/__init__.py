"""evalkit: evaluate chat models on simulated exams and academic benchmarks.

The pipeline runs one way (see DESIGN.md and each module's docstring):

    spec -> samples -> requests -> completions -> scores -> log -> metrics -> report

Every stage is a plain function over plain data; only `runner` is concurrent.
"""

__version__ = "0.1.0"
