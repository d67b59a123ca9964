import json

import pytest

from dcgan.config import ConfigError, TrainConfig, parse_overrides


def test_defaults_are_the_papers():
    c = TrainConfig()
    assert (c.lr_g, c.lr_d, c.beta1, c.beta2) == (2e-4, 2e-4, 0.5, 0.999)
    assert (c.latent_dim, c.ngf, c.ndf, c.loss, c.d_steps_per_g, c.batch_size) == (100, 64, 64, "bce", 1, 64)
    assert (c.init, c.gp_weight, c.dataset, c.device) == ("dcgan", 10.0, "digits", "auto")


def test_json_round_trip(tmp_path):
    c = TrainConfig(loss="hinge", lr_g=1e-3, image_size=28, channels_last=True)
    assert TrainConfig.from_json(c.to_json()) == c
    c.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == c
    # best_config.json wraps the config beside its scores
    (tmp_path / "best.json").write_text(json.dumps({"config": c.to_dict(), "fid": 3.2}))
    assert TrainConfig.from_json(tmp_path / "best.json") == c


def test_frozen():
    with pytest.raises(Exception):
        TrainConfig().lr_g = 1.0


def test_unknown_key_names_the_closest_field():
    with pytest.raises(ConfigError, match="unknown config key 'lr_gen'.*did you mean 'lr_g'"):
        TrainConfig.from_dict({"lr_gen": 1e-3})


@pytest.mark.parametrize("key,value,match", [
    ("image_size", 100, "image_size"),
    ("image_size", 512, "image_size"),
    ("image_size", 4, "image_size"),
    ("lr_g", 0.0, "lr_g"),
    ("lr_d", -1e-3, "lr_d"),
    ("beta1", 1.0, "beta1"),
    ("beta2", -0.1, "beta2"),
    ("d_steps_per_g", 0, "d_steps_per_g"),
    ("d_steps_per_g", 1.5, "d_steps_per_g"),
    ("loss", "wgan", "unknown loss"),
    ("init", "xavier", "unknown init"),
    ("steps", "many", "steps"),
    ("ema", 1.0, r"ema must be in \[0, 1\)"),
    ("ema", -0.5, r"ema must be in \[0, 1\)"),
])
def test_invalid_values_fail(key, value, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict({key: value})


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64, 128, 256])
def test_valid_sizes(size):
    assert TrainConfig(image_size=size).image_size == size


def test_overrides_from_strings_are_coerced():
    c = TrainConfig.from_dict(parse_overrides(["lr_g=1e-3", "d_steps_per_g=3", "loss=lsgan", "compile=false"]))
    assert (c.lr_g, c.d_steps_per_g, c.loss, c.compile) == (1e-3, 3, "lsgan", False)
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr_g"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json(tmp_path / "bad.json")
