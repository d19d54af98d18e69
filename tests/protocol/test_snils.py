import pytest

from iemk_etl.protocol import snils


def test_published_example_is_valid():
    assert snils.is_valid("112-233-445 95")
    assert snils.complete("112233445") == "11223344595"


@pytest.mark.parametrize("number", ["11223344594", "11223344596", "11223344500"])
def test_wrong_check_digits_are_refused(number):
    assert not snils.is_valid(number)


def _with_weighted_sum(target: int) -> str:
    for n in range(1_002_000, 10_000_000):
        first = f"{n:09d}"
        if sum(int(d) * w for d, w in zip(first, range(9, 0, -1), strict=True)) == target:
            return first
    raise AssertionError(target)


@pytest.mark.parametrize(("weighted_sum", "expected"), [(99, "99"), (100, "00"), (101, "00"), (150, "49"),
                                                       (202, "00")])
def test_check_digit_rules(weighted_sum, expected):
    assert snils.check_digits(_with_weighted_sum(weighted_sum)) == expected


def test_numbers_below_the_threshold_are_not_checked():
    assert snils.is_valid("00100199800")


@pytest.mark.parametrize("bad", ["", "1234567890", "abcdefghijk", "112233445951"])
def test_malformed_numbers(bad):
    assert not snils.is_valid(bad)
