"""`evalkit view`: a sample browser for run logs, served locally or written as one file (docs/view.md)."""
