"""The keys of a run's result rows: constants, so that writers and readers never spell them twice.

A row is one line of a run's `metrics.jsonl` (and, with `time_s` added by the search, of a trial's
`results.jsonl`): the loop's keys, then at an evaluation every key of `KEYS` (stacked-mnist adds
`STACKED_KEYS`). Values are floats or None, except the strings `STATUS`, `EXTRACTOR`, `REFERENCE`,
`COLLAPSE` and `REASON`, and the ints `STEP` and `N`.

Adding a column is one edit here: `ROW_KEYS` carries it to results.jsonl, and `DIAGNOSTICS` to
the report's leaderboard.
"""

# --- the training loop --------------------------------------------------------------------------
STEP = "step"  # generator updates so far
STATUS = "status"  # RUNNING | COMPLETED | DIVERGED
RUNNING, COMPLETED, DIVERGED = "running", "completed", "diverged"  # STATUS's values (status.json's too)
D_LOSS, G_LOSS = "d_loss", "g_loss"  # mean losses since the previous evaluation
D_REAL, D_FAKE = "d_real", "d_fake"  # mean D logits on real and generated batches
REASON = "reason"  # why a run diverged
LOSS_KEYS = (D_LOSS, G_LOSS, D_REAL, D_FAKE)

# --- an evaluation ------------------------------------------------------------------------------
FID = "fid"
EXTRACTOR = "extractor"  # which feature space: "inception-v3-pool3", "digits-classifier-v2@<its weights' hash>"
N = "n"  # generated samples scored
REFERENCE = "reference"  # the real statistics' split, e.g. "digits/train@16px"
PRECISION = "precision"  # Kynkaanniemi et al. 2019, k=3
RECALL = "recall"
DENSITY = "density"  # Naeem et al. 2020, k=5
COVERAGE = "coverage"
CLASS_COVERAGE = "class_coverage"  # labelled data only, else None
CLASS_KL = "class_kl"
DUPLICATE_RATE = "duplicate_rate"
MEMORIZATION = "memorization"  # < 1: generated samples sit closer to training images than held-out real ones do
COLLAPSE = "collapse"  # OK | PARTIAL | COLLAPSED | NOT_LEARNED (dcgan.metrics.diagnostics.collapse_verdict)

KEYS = (FID, EXTRACTOR, N, REFERENCE, PRECISION, RECALL, DENSITY, COVERAGE, CLASS_COVERAGE, CLASS_KL,
        DUPLICATE_RATE, MEMORIZATION, COLLAPSE)

MODES = "modes"  # stacked-mnist: modes (of 1000) with at least one sample, PacGAN's protocol
MODES_KL = "modes_kl"  # stacked-mnist: KL(generated mode histogram || uniform over 1000)
STACKED_KEYS = (MODES, MODES_KL)

PROTOCOL_KEYS = (EXTRACTOR, N, REFERENCE)  # how a FID was measured: FIDs differing in one never compare
# The numbers shown beside FID, in the report's column order (a run has those its data allows).
DIAGNOSTICS = (PRECISION, RECALL, DENSITY, COVERAGE, CLASS_COVERAGE, CLASS_KL, MODES, MODES_KL, DUPLICATE_RATE,
               MEMORIZATION)

# Every key a row may carry, in the order rows are written.
ROW_KEYS = (STEP, STATUS, *LOSS_KEYS, *KEYS, *STACKED_KEYS, REASON)

# ok | partial (some modes missing) | collapsed (few modes) | not_learned (nothing like the data)
OK, PARTIAL, COLLAPSED, NOT_LEARNED = "ok", "partial", "collapsed", "not_learned"
FAILED_VERDICTS = (COLLAPSED, NOT_LEARNED)  # the generator failed: never counted as a good result
