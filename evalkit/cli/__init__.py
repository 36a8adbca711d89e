"""The command line: commands parse flags, call the stages below, print and set exit codes."""
