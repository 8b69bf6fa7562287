"""Datelines (pipeline.cna.dateline). Reporter names below are invented."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cna.dateline import DATELINE_RE, count_datelines, known_places, parse_dateline, split_name_place


def dl(dateline, place, day, kind, reporters, end, start=0):
    return {
        "dateline": dateline,
        "dateline_place": place,
        "dateline_day": day,
        "dateline_kind": kind,
        "reporters": reporters,
        "start": start,
        "end": end,
    }


def test_gazetteer_loaded():
    places = known_places()
    for p in ("台北", "舊金山", "金山", "香港", "桃園機場", "台東縣", "華盛頓", "布魯塞爾", "华盛顿"):
        assert p in places


def test_two_reporters():
    text = "（中央社記者王小明、李大同台北23日電）今天天氣很好。"
    assert parse_dateline(text) == dl(
        "中央社記者王小明、李大同台北23日電", "台北", 23, "電", ["王小明", "李大同"], 20
    )
    assert text[20:] == "今天天氣很好。"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("（中央社台北7日電）正文", dl("中央社台北7日電", "台北", 7, "電", [], 10)),
        (
            "（中央社記者陳小華台北23日電）正文",
            dl("中央社記者陳小華台北23日電", "台北", 23, "電", ["陳小華"], 16),
        ),
        (
            "（中央社記者陳小華布魯塞爾3日專電）正",
            dl("中央社記者陳小華布魯塞爾3日專電", "布魯塞爾", 3, "專電", ["陳小華"], 18),
        ),
        (
            "（中央社亞美尼亞葉里凡30日綜合外電報導）正",
            dl("中央社亞美尼亞葉里凡30日綜合外電報導", "亞美尼亞葉里凡", 30, "綜合外電報導", [], 21),
        ),
        ("（中央社台北8日綜合報導）正", dl("中央社台北8日綜合報導", "台北", 8, "綜合報導", [], 13)),
        (
            "（中央社記者林大明柏林特稿）正",
            dl("中央社記者林大明柏林特稿", "柏林", None, "特稿", ["林大明"], 14),
        ),
        ("（中央社華盛頓6日綜合外電）正", dl("中央社華盛頓6日綜合外電", "華盛頓", 6, "綜合外電", [], 14)),
        ("（中央社倫敦2日外電報導）正", dl("中央社倫敦2日外電報導", "倫敦", 2, "外電報導", [], 13)),
        (
            "（中央社記者林大明東京2日電視專訪）正",
            dl("中央社記者林大明東京2日電視專訪", "東京", 2, "電視專訪", ["林大明"], 18),
        ),
        ("（中央社記者林大明台北2日）正", dl("中央社記者林大明台北2日", "台北", 2, None, ["林大明"], 14)),
        ("（中央社網站）正", dl("中央社網站", None, None, None, [], 7)),
        ("（中央社網站30日電）正", dl("中央社網站30日電", None, 30, "電", [], 11)),
        ("（中央社21日網站電）正", dl("中央社21日網站電", None, 21, "網站電", [], 11)),
        ("（中央社13日台北電）正", dl("中央社13日台北電", "台北", 13, "電", [], 11)),
        (
            "（中央社記者林大明20日布魯塞爾專電）正",
            dl("中央社記者林大明20日布魯塞爾專電", "布魯塞爾", 20, "專電", ["林大明"], 19),
        ),
        (
            "（中央社上海記者林大明27日電）正",
            dl("中央社上海記者林大明27日電", "上海", 27, "電", ["林大明"], 16),
        ),
        ("（中央社記者31日綜合報導）正", dl("中央社記者31日綜合報導", None, 31, "綜合報導", [], 14)),
        ("（中央社記者林大明8日電）正", dl("中央社記者林大明8日電", None, 8, "電", ["林大明"], 13)),
        (
            "（中央社記者王一、陳二、林三、吳四台北11 日電）正",
            dl(
                "中央社記者王一、陳二、林三、吳四台北11 日電",
                "台北",
                11,
                "電",
                ["王一", "陳二", "林三", "吳四"],
                25,
            ),
        ),
        ("（中央社記者林大明台北27電）正", dl("中央社記者林大明台北27電", "台北", 27, "電", ["林大明"], 15)),
        (
            "（中央社記者林大明台北2020年8月14日電）正",
            dl("中央社記者林大明台北2020年8月14日電", "台北", 14, "電", ["林大明"], 23),
        ),
        ("（中央記者林大明台北25日電）正", dl("中央記者林大明台北25日電", "台北", 25, "電", ["林大明"], 15)),
        (
            "（中央社記長林大明台北26日電）正",
            dl("中央社記長林大明台北26日電", "台北", 26, "電", ["林大明"], 16),
        ),
        (
            "（中央通訊社華盛頓20綜合外電報導）正",
            dl("中央通訊社華盛頓20綜合外電報導", "華盛頓", 20, "綜合外電報導", [], 18),
        ),
        (
            "（中央社特派員林大明東京3日電）正",
            dl("中央社特派員林大明東京3日電", "東京", 3, "電", ["林大明"], 16),
        ),
        (
            "（中央社華盛頓/紐約5日綜合外電報導）正",
            dl("中央社華盛頓/紐約5日綜合外電報導", "華盛頓/紐約", 5, "綜合外電報導", [], 19),
        ),
        ("(中央社記者林大明台北5日電)正", dl("中央社記者林大明台北5日電", "台北", 5, "電", ["林大明"], 15)),
        ("(中央社記者林大明台北5日電）正", dl("中央社記者林大明台北5日電", "台北", 5, "電", ["林大明"], 15)),
        ("  （ 中央社台北7日電 ）正", dl("中央社台北7日電", "台北", 7, "電", [], 14, start=2)),
        ("（法新社华盛顿20日电）正", dl("法新社华盛顿20日电", "华盛顿", 20, "电", [], 12)),
        ("（中央社台北7日电）正", dl("中央社台北7日电", "台北", 7, "电", [], 10)),
    ],
)
def test_variants(text, expected):
    assert parse_dateline(text) == expected


@pytest.mark.parametrize(
    ("text", "reporters", "place"),
    [
        ("（中央社記者張謙香港2日電）", ["張謙"], "香港"),  # 2-character name
        ("（中央社記者葉臻桃園機場2日電）", ["葉臻"], "桃園機場"),
        ("（中央社記者王小明舊金山2日電）", ["王小明"], "舊金山"),  # not 王小明舊 / 金山
        ("（中央社記者王小明金山2日電）", ["王小明"], "金山"),
        ("（中央社記者歐陽小明台北2日電）", ["歐陽小明"], "台北"),  # 4-character name
        ("（中央社記者林大明台東縣2日電）", ["林大明"], "台東縣"),
        ("（中央社記者林大明柏林2日專電）", ["林大明"], "柏林"),
        ("（中央社記者王一、陳二、林三花蓮-台北17日電）", ["王一", "陳二", "林三"], "花蓮-台北"),
        ("（中央社記者王一甲雅加達、陳二乙台北24日專電）", ["王一甲", "陳二乙"], "雅加達、台北"),
        ("（中央社記者王一甲、陳二乙/雪梨、東京20日專電）", ["王一甲", "陳二乙"], "雪梨、東京"),
        ("（中央社記者林大明甲乙丙2日電）", ["林大明"], "甲乙丙"),  # unknown place: 3-char fallback
        ("（中央社記者林大明2日電）", ["林大明"], None),
        # a space between name and place (typed, U+3000, or a no-break space from &nbsp;) is no part of either
        ("（中央社記者王小明 台北1日電）", ["王小明"], "台北"),
        ("（中央社記者王小明\u3000台北1日電）", ["王小明"], "台北"),
        ("（中央社記者王小明\u00a0台北1日電）", ["王小明"], "台北"),
        ("（中央社記者王小明/台北1日電）", ["王小明"], "台北"),  # a slash parting name from place
        ("（中央社記者王小明上海/台北1日電）", ["王小明"], "上海/台北"),  # ...or two places
    ],
)
def test_name_place_split(text, reporters, place):
    found = parse_dateline(text)
    assert (found["reporters"], found["dateline_place"]) == (reporters, place)


def test_split_name_place():
    assert split_name_place("陳小華台北") == ("陳小華", "台北")
    assert split_name_place("張謙香港") == ("張謙", "香港")
    assert split_name_place("林大明") == ("林大明", None)
    assert split_name_place("") == (None, None)


def test_label_before_the_bracket():
    text = "特派員看世界（中央社記者林大明倫敦11日專電）英國"
    assert parse_dateline(text) == dl(
        "中央社記者林大明倫敦11日專電", "倫敦", 11, "專電", ["林大明"], 23, start=6
    )
    assert text[:6] == "特派員看世界"
    assert text[23:] == "英國"


@pytest.mark.parametrize(
    "text",
    [
        "今天天氣很好（中央社台北7日電）",  # not at the start
        "（圖取自維基共享資源）今天",
        "（中央社記者王小明攝 109年8月3日）",  # photo credit
        "（中央社檔案照片）",
        "（中央社）",
        "（中央流行疫情指揮中心）今天",
        "（中央社記者）",
        "（更新）今天",
        "她說，今天很好，所以（中央社台北7日電）",
        "",
    ],
)
def test_not_a_dateline(text):
    assert parse_dateline(text) is None


def test_count_datelines():
    paras = [
        "（中央社台北7日電）甲。",
        "★標題",
        "（中央社記者王小明台中7日電）乙。",
        "丙（中央社記者林大明攝）",
    ]
    assert count_datelines(paras) == 2
    assert len(DATELINE_RE.findall("（中央社台北7日電）甲（中央社東京7日電）")) == 2


@given(st.text())
def test_never_raises(text):
    found = parse_dateline(text)
    if found is not None:
        assert 0 <= found["start"] < found["end"] <= len(text)
        assert all(found["reporters"])
        assert found["dateline_day"] is None or 0 <= found["dateline_day"] <= 99
    count_datelines([text])


@given(st.text(alphabet="（）()中央社記者電專日台北香港舊金山王小明、/0123 ", max_size=40))
def test_never_raises_on_dateline_like_text(text):
    parse_dateline(text)
    split_name_place(text)


def test_kind_chars_cover_the_kind_pattern():
    """parse_dateline_inner searches for the kind from the trailing run of _KIND_CHARS only."""
    import re

    from pipeline.cna.dateline import _KIND_CHARS, _KIND_RE

    assert set(re.findall(r"[^\x00-\x7f]", _KIND_RE.pattern)) == _KIND_CHARS
