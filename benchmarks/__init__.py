"""The benchmark suite, shipped in the wheel as ``parago.bench`` (`parago bench`).

Each ``bench_<name>.py`` runs as a script in its own interpreter (run.py
starts them), so nothing here is imported as a package at run time.
"""
