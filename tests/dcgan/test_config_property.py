"""Config loading, property-based (hypothesis): any JSON object given to `TrainConfig.from_dict`
(or in a config file), and any `--set KEY=VALUE` list, either loads or raises `ConfigError` with
one line, which the CLIs print and exit 2 on; never another exception, never a traceback."""

from __future__ import annotations

import json
from dataclasses import fields

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dcgan.config import ConfigError, TrainConfig, parse_overrides

FIELDS = [f.name for f in fields(TrainConfig)]
# values near the edges of what each field takes, as text a user types
TYPED = st.sampled_from(["0", "1", "-1", "8", "16", "28", "64", "0.5", "1e-3", "2e-4", "0.999", "1.0", "1e400",
                         "nan", "inf", "-inf", "true", "false", "yes", "", " ", "bce", "hinge", "wgan-gp", "kaiming",
                         "bf16", "digits", "folder:/nowhere", "translation,cutout", "cutout, color", "flip",
                         "a\nb", "'"]) | st.just("9" * 5000)  # an int too long for int() (Python's digit limit)
KEYS = st.sampled_from(FIELDS) | st.text(max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10 ** 400), max_value=10 ** 400)
           | st.floats() | st.text(max_size=20) | TYPED)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                            max_size=3), max_leaves=4)


def loads_or_says_one_line(load) -> None:
    try:
        cfg = load()
    except ConfigError as e:
        assert str(e).strip() and "\n" not in str(e), repr(str(e))
        return
    assert isinstance(cfg, TrainConfig) and TrainConfig.from_json(cfg.to_json()) == cfg  # and saves as it loads


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_json_object_loads_or_says_one_line(values):
    loads_or_says_one_line(lambda: TrainConfig.from_dict(values))
    text = json.dumps({"config": values})  # a config file, as best_config.json wraps it
    loads_or_says_one_line(lambda: TrainConfig.from_json(text))


@settings(max_examples=500, deadline=None)
@example(["schedule=" + "9" * 5000])  # found by this test: the schedule's JSON raised the digit limit's ValueError
@given(st.lists(st.tuples(KEYS, TYPED | st.text(max_size=20)).map("=".join) | st.text(max_size=20), max_size=6))
def test_any_set_list_loads_or_says_one_line(pairs):
    loads_or_says_one_line(lambda: TrainConfig.from_dict(parse_overrides(pairs)))


def test_a_config_file_with_an_integer_too_long_to_read_says_so():
    loads_or_says_one_line(lambda: TrainConfig.from_json('{"steps": ' + "9" * 5000 + "}"))
