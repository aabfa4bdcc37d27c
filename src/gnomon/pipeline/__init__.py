"""The middle of a run, in the order it happens: plan (rows to samples and requests), look up
(what the store already holds), compute (missing answers through an executor, scores through
the scorer) and record. `gnomon.run` strings them together; `gnomon score` uses the same parts
with answers read from a file."""
