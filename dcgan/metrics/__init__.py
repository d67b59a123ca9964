"""Evaluation: features -> statistics -> FID, and mode-collapse diagnostics."""


def build_evaluator(cfg, splits, device):
    """Placeholder until the metrics land: no evaluator, losses only."""
    return None
