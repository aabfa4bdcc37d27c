"""Builders that tests and benchmarks use and gnomon itself never does: synthetic leaderboard
stores (`synthetic`), tiny GGUF checkpoints (`tiny_gguf`) and small-window model copies
(`windows`).

A package of its own beside `gnomon`, not inside it: nothing under `gnomon` may import it (a
test checks this), so the runtime cannot come to depend on test scaffolding, while `pip install
-e .` still installs it (setuptools finds every package under `src/`) for tests and benchmarks
to import. The tiny model builder itself (`gnomon.tiny`) stays in the runtime package: `gnomon
demo` and `gnomon hub show` use it.
"""
