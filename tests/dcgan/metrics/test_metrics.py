"""Properties of the metric chain: features -> statistics -> FID, and the k-NN diagnostics.

FID(x, x) = 0, symmetry, agreement with the scipy sqrtm reference; statistics independent of the
batch size and of the DDP world size; precision/recall/density/coverage equal to the reference
implementation (prdc); the Inception loader never downloads in tests and reads a local file.
"""

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.multiprocessing as mp

from dcgan.metrics import diagnostics
from dcgan.metrics.fid import frechet_distance
from dcgan.metrics.stats import FeatureStats, feature_stats


def _gaussian_features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5 + torch.eye(d)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix.double()) + shift


def _scipy_fid(mu1, s1, mu2, s2) -> float:
    """The reference: pytorch-fid / TTUR's formula with scipy.linalg.sqrtm."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# --- FID --------------------------------------------------------------------------------------------


def test_fid_of_identical_statistics_is_zero():
    mu, sigma = feature_stats(_gaussian_features(500, 32, 0)).mean_cov()
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_fid_is_symmetric_and_matches_scipy_sqrtm():
    mu1, s1 = feature_stats(_gaussian_features(2000, 64, 1)).mean_cov()
    mu2, s2 = feature_stats(_gaussian_features(2000, 64, 2, shift=0.3)).mean_cov()
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)
    assert ours == pytest.approx(_scipy_fid(mu1, s1, mu2, s2), rel=1e-6)
    assert ours > 1.0


def test_fid_of_rank_deficient_covariances_is_finite():
    """N < D, as with a few samples in Inception's 2048-d space: sqrtm struggles, eigh does not."""
    mu1, s1 = feature_stats(_gaussian_features(20, 64, 3)).mean_cov()
    mu2, s2 = feature_stats(_gaussian_features(20, 64, 4)).mean_cov()
    value = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value) and value > 0


# --- statistics -------------------------------------------------------------------------------------


def test_statistics_do_not_depend_on_batch_size():
    x = _gaussian_features(1000, 16, 5, shift=2.0).float()
    mu1, s1 = feature_stats(x, batch_size=1000).mean_cov()
    mu7, s7 = feature_stats(x, batch_size=7).mean_cov()
    np.testing.assert_allclose(mu7, mu1, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s7, s1, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s1, np.cov(x.double().numpy(), rowvar=False), rtol=1e-6, atol=1e-9)


def _ddp_stats_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        x = _gaussian_features(1001, 16, 5, shift=2.0).float()
        mine = x[rank * 1001 // world : (rank + 1) * 1001 // world]  # uneven slices on purpose
        mu, sigma = FeatureStats.empty(16).update(mine).all_reduce().mean_cov()
        from dcgan.metrics.evaluator import gather_rows

        gathered = gather_rows(mine)
        if rank == 0:
            torch.save({"mu": mu, "sigma": sigma, "gathered": gathered}, out_file)
    finally:
        dist.destroy_process_group()


def test_statistics_are_the_same_on_two_ddp_ranks(tmp_path):
    out = tmp_path / "out.pt"
    mp.spawn(_ddp_stats_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    two = torch.load(out, weights_only=False)
    x = _gaussian_features(1001, 16, 5, shift=2.0).float()
    mu, sigma = feature_stats(x).mean_cov()
    np.testing.assert_allclose(two["mu"], mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(two["sigma"], sigma, rtol=1e-6, atol=1e-9)
    assert torch.equal(two["gathered"], x)


# --- k-NN diagnostics -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_real,n_fake", [(300, 300), (250, 400)])
def test_prdc_matches_the_reference_implementation(n_real, n_fake):
    prdc_ref = pytest.importorskip("prdc")
    real = _gaussian_features(n_real, 8, 6).float()
    fake = _gaussian_features(n_fake, 8, 7, shift=0.4).float()
    ours = diagnostics.prdc(diagnostics.RealNeighbours.of(real), fake)
    pr = prdc_ref.compute_prdc(real.numpy().astype(np.float64), fake.numpy().astype(np.float64), nearest_k=3)
    dc = prdc_ref.compute_prdc(real.numpy().astype(np.float64), fake.numpy().astype(np.float64), nearest_k=5)
    assert ours["precision"] == pytest.approx(pr["precision"], abs=1e-12)
    assert ours["recall"] == pytest.approx(pr["recall"], abs=1e-12)
    assert ours["density"] == pytest.approx(dc["density"], abs=1e-12)
    assert ours["coverage"] == pytest.approx(dc["coverage"], abs=1e-12)


def test_duplicates_memorization_and_class_metrics_on_constructed_sets():
    real = _gaussian_features(400, 8, 8).float()
    nb = diagnostics.RealNeighbours.of(real)
    copies = real[:50].repeat(8, 1)  # 400 samples, each with 7 exact copies
    nn1 = diagnostics.knn_radii(copies, (1,))[1]
    assert diagnostics.duplicate_rate(nn1, nb.duplicate_tau) == 1.0
    assert diagnostics.memorization(diagnostics.nearest_distance(copies, real), heldout_median=1.0) == 0.0
    shares = np.full(10, 0.1)
    one = diagnostics.class_metrics(torch.zeros(100, dtype=torch.int64), shares)
    assert one["class_coverage"] == pytest.approx(0.1) and one["class_kl"] == pytest.approx(np.log(10))
    stacked = diagnostics.stacked_modes(torch.arange(1000, dtype=torch.int64))
    assert stacked == {"modes": 1000.0, "modes_kl": pytest.approx(0.0, abs=1e-12)}


def test_collapse_verdict_rule():
    ok = {"class_coverage": 1.0, "class_kl": 0.01, "duplicate_rate": 0.01, "recall": 0.8, "density": 0.9}
    assert diagnostics.collapse_verdict(ok, True) == "ok"
    assert diagnostics.collapse_verdict({**ok, "class_coverage": 0.1}, True) == "collapsed"
    assert diagnostics.collapse_verdict({**ok, "class_coverage": 0.1}, False) == "ok"  # classes not trusted
    assert diagnostics.collapse_verdict({**ok, "class_coverage": 0.6}, True) == "partial"
    assert diagnostics.collapse_verdict({**ok, "duplicate_rate": 0.6}, False) == "collapsed"
    assert diagnostics.collapse_verdict({**ok, "recall": 0.2}, False) == "partial"
    # nothing near the data: never learned, even where the classes would also say collapsed
    assert diagnostics.collapse_verdict({**ok, "recall": 0.01, "density": 0.1, "class_coverage": 0.1}, True) == "not_learned"
    assert diagnostics.collapse_verdict({**ok, "recall": 0.01, "density": 0.9}, True) == "collapsed"  # few, real modes


# --- Inception weights ------------------------------------------------------------------------------


def test_missing_inception_weights_say_how_to_provide_them(tmp_path, monkeypatch):
    from dcgan.metrics import inception

    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path))
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    with pytest.raises(inception.MissingWeights, match="DCGAN_INCEPTION_WEIGHTS") as e:
        inception.resolve_weights(allow_download=False)
    assert "downloads are disabled" in str(e.value)
    monkeypatch.setenv(inception.NO_DOWNLOAD_ENV, "1")
    with pytest.raises(inception.MissingWeights, match="downloads are disabled"):
        inception.load_inception()
    with pytest.raises(inception.MissingWeights, match="no file at"):
        inception.load_inception(tmp_path / "nope.pth")


def _random_inception_state_dict() -> dict:
    """A randomly initialised state_dict of torch-fidelity's FID Inception, built offline."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random init
            return None

    import tempfile, os

    with tempfile.TemporaryDirectory() as d:
        empty = os.path.join(d, "empty.pt")
        torch.save({}, empty)
        torch.manual_seed(0)
        return Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty).state_dict()


def test_inception_loads_weights_from_a_local_file(tmp_path, monkeypatch):
    from dcgan.metrics import inception

    path = tmp_path / "inception.pth"
    torch.save(_random_inception_state_dict(), path)
    monkeypatch.setenv(inception.NO_DOWNLOAD_ENV, "1")
    net = inception.load_inception(path)
    images = torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)  # grey: repeated to RGB
    feats = inception.inception_features(net, images)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32 and torch.isfinite(feats).all()
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(path))
    assert inception.resolve_weights() == path
