"""The store's tables, indexes and the migration from the first schema."""

SCHEMA_VERSION = 2
LEGACY_SCORER = "legacy"  # scores written before answers and scores were apart
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    model_key TEXT NOT NULL,
    config TEXT NOT NULL,
    engine TEXT,
    gnomon_version TEXT NOT NULL,
    planned INTEGER NOT NULL DEFAULT 0,
    reused INTEGER NOT NULL DEFAULT 0,
    computed INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    rescored INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    model_key TEXT NOT NULL,
    bench TEXT NOT NULL,
    bench_version INTEGER NOT NULL,
    prompt_hash TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    cluster TEXT,
    correct INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    payload TEXT NOT NULL,
    prompt TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created REAL NOT NULL,
    scorer_hash TEXT NOT NULL DEFAULT 'legacy',
    answer_keys TEXT
);
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    answer TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;  -- looked up by key only: one b-tree, not a table and an index
CREATE INDEX IF NOT EXISTS results_by_model ON results (model_key, bench, prompt_hash);
-- A run's samples by index and verdict without reading each row: the sample pages count, filter
-- and order by these (`INDEXED BY results_by_key`: the planner would pick the unique key index).
CREATE INDEX IF NOT EXISTS results_by_key ON results (key, idx, correct);
-- One question across runs: a comparison looks up the few questions a small run shares with a
-- large one instead of reading the large run whole.
CREATE INDEX IF NOT EXISTS results_by_sample ON results (bench, sample_id);
CREATE TABLE IF NOT EXISTS run_results (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS run_results_by_bench ON run_results (run_id, bench, key);
CREATE TABLE IF NOT EXISTS run_failures (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, bench, sample_id)
);
CREATE TABLE IF NOT EXISTS run_benches (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    bench_version INTEGER NOT NULL,
    prompt_hash TEXT NOT NULL,
    shots INTEGER NOT NULL,
    planned INTEGER NOT NULL,
    spec TEXT NOT NULL,
    scorer_hash TEXT,
    headline TEXT,
    headline_note TEXT,
    judge TEXT,
    PRIMARY KEY (run_id, bench)
);
CREATE TABLE IF NOT EXISTS run_moments (
    run_id TEXT NOT NULL,
    bench TEXT NOT NULL,
    metric TEXT NOT NULL,
    cluster TEXT,
    n INTEGER NOT NULL,
    total REAL NOT NULL,
    total_sq REAL NOT NULL,
    nonbinary INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS run_moments_by_run ON run_moments (run_id, bench);
CREATE TABLE IF NOT EXISTS run_moments_done (run_id TEXT PRIMARY KEY);
"""
_TABLES = {"meta", "runs", "results", "run_results", "run_failures", "run_benches"}
_TABLES |= {"run_moments", "run_moments_done", "answers"}
# Columns a schema-1 store lacks; `_migrate` adds them (old scores read as the legacy scorer's).
_ADDED_COLUMNS = {
    "results": ["scorer_hash TEXT NOT NULL DEFAULT 'legacy'", "answer_keys TEXT"],
    "runs": ["rescored INTEGER NOT NULL DEFAULT 0"],
    "run_benches": ["scorer_hash TEXT", "headline TEXT", "headline_note TEXT", "judge TEXT"],
}
_INDEXES = {"results_by_model", "results_by_key", "results_by_sample", "run_results_by_bench"}
_INDEXES |= {"run_moments_by_run"}

# Per (bench, metric, cluster) count, sum and sum of squares of a run's sample metrics: every
# score and interval is rebuilt from these (stats.summarize_moments) without loading samples.
_MOMENTS_SQL = """
SELECT r.bench AS bench, j.key AS metric, s.cluster AS cluster, COUNT(*) AS n,
       TOTAL(j.value) AS total, TOTAL(j.value * j.value) AS total_sq,
       TOTAL(j.value NOT IN (0, 1)) AS nonbinary
FROM run_results r JOIN results s ON s.key = r.key, json_each(s.metrics) j
WHERE r.run_id = ? GROUP BY r.bench, j.key, s.cluster
"""
