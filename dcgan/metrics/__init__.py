"""Evaluation: features -> statistics -> FID, and mode-collapse diagnostics.

    extractor (classifier.py, inception.py, features.py): uint8 images -> features (N, D)
    statistics (stats.py): features -> (mu, sigma), float64, batch- and rank-independent
    metric (fid.py, diagnostics.py): -> FID, precision/recall, density/coverage, classes, ...
    evaluator (evaluator.py): G -> fixed noise -> images -> all of the above, one dict

Result keys are the constants in `keys.py`.
"""

from dcgan.metrics.keys import KEYS, STACKED_KEYS


def build_evaluator(cfg, splits, device, extractor: str = "auto", inception_weights=None):
    """`evaluator(G) -> dict` with the keys in `KEYS`; see dcgan/metrics/evaluator.py."""
    from dcgan.metrics.evaluator import build_evaluator as build

    return build(cfg, splits, device, extractor, inception_weights)


__all__ = ["KEYS", "STACKED_KEYS", "build_evaluator"]
