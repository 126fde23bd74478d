"""One module per benchmark; bench/run.py discovers them (interface in bench/harness.py)."""
