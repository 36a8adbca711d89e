"""evalkit: evaluate chat models on simulated exams and academic benchmarks.

The pipeline runs one way (docs/architecture.md and each module's docstring say more):

    spec -> samples -> requests -> completions -> scores -> log -> metrics -> exam -> report

Every stage works on typed data; only `runner` is concurrent.
"""

__version__ = "0.1.0"
