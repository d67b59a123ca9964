"""Evaluation: features -> statistics -> FID, and mode-collapse diagnostics.

    extractor (classifier.py, inception.py, features.py): uint8 images -> features (N, D)
    statistics (stats.py): features -> (mu, sigma), float64, batch- and rank-independent
    metric (fid.py, diagnostics.py): -> FID, precision/recall, density/coverage, classes, ...
    evaluator (evaluator.py): G -> fixed noise -> images -> all of the above, one dict

Usable on its own, from the data alone:

    splits = load_dataset("digits", 16)
    evaluator = build_evaluator(splits, "cpu", n_samples=2000)
    evaluator(G)                    # or evaluator.score_images(uint8 images)

Result keys are the constants in `dcgan/keys.py`.
"""

from dcgan.keys import KEYS, STACKED_KEYS
from dcgan.metrics.evaluator import Evaluator, build_evaluator

__all__ = ["KEYS", "STACKED_KEYS", "Evaluator", "build_evaluator"]
