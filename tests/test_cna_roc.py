"""ROC date codes (pipeline.cna.roc)."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cna.roc import ROC_CODE_RE, check_roc_code, roc_code_to_date
from pipeline.schema import WARNING_CODES

# 2020-10-01 08:00 Asia/Taipei
PUB_20201001 = int(dt.datetime(2020, 10, 1, 0, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("1091001", dt.date(2020, 10, 1)),
        ("1100207", dt.date(2021, 2, 7)),
        ("1090229", dt.date(2020, 2, 29)),  # leap day
        ("990101", dt.date(2010, 1, 1)),  # 6 digits before ROC year 100
        ("1091341", None),  # month 13
        ("1100229", None),  # 2021 is no leap year
        ("1090000", None),
        ("11060623", None),  # 8 digits
        ("10911xx", None),
        ("109100", None),  # 6 digits: ROC year 10, month 91
        ("", None),
        ("abc", None),
        ("１０９１００１", dt.date(2020, 10, 1)),  # full-width digits, as typed on a CJK keyboard
        ("١٠٩١٠٠١", None),  # other scripts' digits are not a code
    ],
)
def test_roc_code_to_date(code, expected):
    assert roc_code_to_date(code) == expected


def test_check_roc_code_ok():
    assert check_roc_code("1091001", PUB_20201001) == (dt.date(2020, 10, 1), [])
    assert check_roc_code("１０９１００１", PUB_20201001) == (dt.date(2020, 10, 1), [])
    assert check_roc_code("1091003", PUB_20201001) == (dt.date(2020, 10, 3), [])  # 2 days: ok
    assert check_roc_code("1091001", None) == (dt.date(2020, 10, 1), [])


def test_check_roc_code_uses_taipei_date():
    # 2020-09-30 17:00 UTC is already 2020-10-01 01:00 in Taipei; 1090928 is 3 days before that
    late = int(dt.datetime(2020, 9, 30, 17, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert check_roc_code("1090928", late) == (dt.date(2020, 9, 28), ["roc_date_far_from_published"])
    early = int(dt.datetime(2020, 9, 30, 15, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert check_roc_code("1090928", early) == (dt.date(2020, 9, 28), [])


def test_check_roc_code_warnings():
    pub_2021 = int(dt.datetime(2021, 6, 17, 3, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert check_roc_code("1040426", pub_2021) == (dt.date(2015, 4, 26), ["roc_date_far_from_published"])
    assert check_roc_code("1000617", pub_2021) == (dt.date(2011, 6, 17), ["roc_date_far_from_published"])
    assert check_roc_code("11060623", pub_2021) == (None, ["roc_code_malformed"])
    assert check_roc_code("10606", pub_2021) == (None, ["roc_code_malformed"])
    assert check_roc_code("10911xx", pub_2021) == (None, ["roc_code_malformed"])
    assert check_roc_code("1091341", pub_2021) == (None, ["roc_code_invalid_date"])


def test_check_roc_code_bad_published_at_is_ignored():
    assert check_roc_code("1091001", 10**30) == (dt.date(2020, 10, 1), [])
    assert check_roc_code("1091001", -(10**30)) == (dt.date(2020, 10, 1), [])


def test_warning_codes_are_in_the_contract():
    for code in ("11060623", "1091341", "1040426"):
        for w in check_roc_code(code, PUB_20201001)[1]:
            assert w in WARNING_CODES


def test_roc_code_re():
    assert ROC_CODE_RE.search("結束。1091001").group(1) == "1091001"
    assert ROC_CODE_RE.search("結束。1091001 \n").group(1) == "1091001"
    assert ROC_CODE_RE.search("共12345元") is None
    assert ROC_CODE_RE.search("電話123456789") is None


@given(st.text(), st.one_of(st.none(), st.integers()))
def test_never_raises(code, published):
    roc_code_to_date(code)
    date, warnings = check_roc_code(code, published)
    assert date is None or isinstance(date, dt.date)
    assert all(w in WARNING_CODES for w in warnings)


@given(st.dates(min_value=dt.date(1912, 1, 1), max_value=dt.date(2910, 12, 31)))
def test_roundtrip(date):
    y = date.year - 1911
    code = f"{y:02d}{date.month:02d}{date.day:02d}" if y < 100 else f"{y}{date.month:02d}{date.day:02d}"
    if len(code) in (6, 7):
        assert roc_code_to_date(code) == date


def test_published_taipei_date_matches_datetime():
    """The integer day arithmetic gives the same Taipei date as datetime (and None out of range)."""
    from pipeline.cna.roc import _published_taipei_date

    taipei = dt.timezone(dt.timedelta(hours=8))

    def reference(ms):
        try:
            return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).astimezone(taipei).date()
        except (OverflowError, OSError, ValueError):
            return None

    midnight = int(dt.datetime(2020, 9, 30, 16, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)
    low = int(dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    high = int(dt.datetime(9999, 12, 31, 15, 59, 59, tzinfo=dt.timezone.utc).timestamp() * 1000)
    for ms in (0, -1, 1, midnight - 1, midnight, midnight + 1, low - 1, low, high, high + 1000, -(2**70), 2**70):
        assert _published_taipei_date(ms) == reference(ms), ms
    assert _published_taipei_date(midnight - 1) == dt.date(2020, 9, 30)
    assert _published_taipei_date(midnight) == dt.date(2020, 10, 1)
