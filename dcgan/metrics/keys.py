"""Result keys of an evaluation: constants, so that writers and readers never spell them twice.

Every evaluation dict has exactly `KEYS`; stacked-mnist adds `STACKED_KEYS`. Values are floats
or None, except the strings `EXTRACTOR`, `REFERENCE` and `COLLAPSE`, and the int `N`.
"""

FID = "fid"
EXTRACTOR = "extractor"  # which feature space, e.g. "digits-classifier-v1" or "inception-v3-pool3"
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
COLLAPSE = "collapse"  # ok | partial | collapsed

KEYS = (FID, EXTRACTOR, N, REFERENCE, PRECISION, RECALL, DENSITY, COVERAGE, CLASS_COVERAGE, CLASS_KL,
        DUPLICATE_RATE, MEMORIZATION, COLLAPSE)

MODES = "modes"  # stacked-mnist: modes (of 1000) with at least one sample, PacGAN's protocol
MODES_KL = "modes_kl"  # stacked-mnist: KL(generated mode histogram || uniform over 1000)
STACKED_KEYS = (MODES, MODES_KL)

VERDICTS = ("ok", "partial", "collapsed")
