"""Style selection: exact, prefix and word-prefix matching, mixes and 'all'."""

import pytest

from stylize.errors import StylizeError
from stylize.model.styles import choose, find_style

NAMES = ["starry_night", "great_wave", "the_scream"]


@pytest.mark.parametrize("query, expected", [
    ("starry_night", 0), ("STARRY_NIGHT", 0), ("starry", 0), ("s", 0), ("great", 1), ("wave", 1),
    ("scream", 2), ("Scream", 2), ("the", 2), ("night", 0), ("great wave", 1), ("great-wave", 1), (" wave ", 1),
])
def test_find_style_by_name_prefix_or_word_prefix(query, expected):
    assert find_style(query, NAMES) == expected


def test_exact_beats_prefix_and_prefix_beats_word_prefix():
    names = ["star", "starry_night", "bright_star_x"]
    assert find_style("star", names) == 0  # exact, though a prefix of the others
    assert find_style("starr", names) == 1
    names = ["wave_one", "great_wave"]
    assert find_style("wave", names) == 0  # prefix of wave_one, word prefix of great_wave


@pytest.mark.parametrize("query, message", [
    ("monet", "unknown style 'monet'; this model has: starry_night, great_wave, the_scream"),
    ("  ", "empty style name; this model has: starry_night, great_wave, the_scream"),
])
def test_unknown_and_empty_names(query, message):
    with pytest.raises(StylizeError) as err:
        find_style(query, NAMES)
    assert str(err.value) == message


def test_ambiguous_prefix_names_the_candidates():
    with pytest.raises(StylizeError) as err:
        find_style("great", ["great_wave", "great_fire", "scream"])
    assert str(err.value) == "style 'great' is ambiguous: it matches great_wave, great_fire; type more of the name"
    with pytest.raises(StylizeError, match="'wave' is ambiguous: it matches great_wave, big_wave"):
        find_style("wave", ["great_wave", "big_wave"])


def test_a_name_that_heads_the_other_hits_wins():
    names = ["starry_night_over_the_rhone", "starry_night", "great_wave"]
    assert find_style("starry", names) == 1
    assert find_style("night", names) == 1
    assert find_style("rhone", names) == 0
    assert find_style("starry_night_o", names) == 0
    # Only whole words count as heads: "star" beside "starry" is still ambiguous.
    with pytest.raises(StylizeError, match="'sta' is ambiguous: it matches star, starry"):
        find_style("sta", ["star", "starry"])


def test_choose_single_all_and_default():
    [one] = choose("wave", NAMES)
    assert one.label == "great_wave" and one.weights == (0.0, 1.0, 0.0)
    assert [c.label for c in choose("ALL", NAMES)] == NAMES
    assert choose(None, ["only"])[0].label == "only"
    with pytest.raises(StylizeError, match="choose a style with --style; this model has: starry_night"):
        choose(None, NAMES)


def test_mix_is_normalized_and_labelled():
    [mix] = choose("starry:0.7,wave:0.3", NAMES)
    assert mix.weights == pytest.approx((0.7, 0.3, 0.0))
    assert mix.label == "starry_night70+great_wave30"
    [mix] = choose("scream:2, starry:1", NAMES)
    assert mix.weights == pytest.approx((1 / 3, 0.0, 2 / 3))
    [mix] = choose({"wave": 1.0, "scream": 1.0}, NAMES)
    assert mix.weights == pytest.approx((0.0, 0.5, 0.5))


def test_one_hot_mix_is_the_plain_style():
    assert choose("wave:1", NAMES) == choose("great_wave", NAMES)
    assert choose("wave:5,starry:0", NAMES)[0] == choose("wave", NAMES)[0]


@pytest.mark.parametrize("spec, message", [
    ("starry:0.7,", "bad style mix"),
    ("starry:0.7,wave", "bad style mix"),
    ("starry:", "bad style mix"),
    (":0.5", "bad style mix"),
    ("starry:abc", "bad weight 'abc' for style starry_night"),
    ("starry:-1,wave:2", "bad weight '-1'"),
    ("starry:nan", "bad weight 'nan'"),
    ("starry:inf", "bad weight 'inf'"),
    ("starry:0,wave:0", "sum to 0"),
    ("starry:1,starry_night:1", "appears twice"),
    ("monet:1", "unknown style 'monet'"),
    ("great:1", None),  # fine: 'great' is a unique prefix
])
def test_bad_mix_syntax_is_one_clear_line(spec, message):
    if message is None:
        assert choose(spec, NAMES)[0].label == "great_wave"
        return
    with pytest.raises(StylizeError) as err:
        choose(spec, NAMES)
    assert message in str(err.value) and "\n" not in str(err.value)
