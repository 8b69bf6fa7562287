"""Credit blocks (pipeline.cna.credits). All names below are invented."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cna.credits import ROLE_BY_LABEL, find_credit_block, parse_credit_line


def c(role, name):
    return {"role": role, "name": name}


def test_role_by_label():
    assert ROLE_BY_LABEL["譯者"] == ROLE_BY_LABEL["译者"] == "translator"
    assert ROLE_BY_LABEL["核稿"] == "reviewer"
    assert ROLE_BY_LABEL["編輯"] == ROLE_BY_LABEL["编辑"] == ROLE_BY_LABEL["編緝"] == "editor"
    assert ROLE_BY_LABEL["編譯"] == ROLE_BY_LABEL["编译"] == "compiler"


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("編輯：王小明", [c("editor", "王小明")]),
        ("編輯：王小明/李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        ("譯者：張三豐/核稿：趙四海", [c("translator", "張三豐"), c("reviewer", "趙四海")]),
        ("编辑：王小明／李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        ("编辑：王小明、李大同、陳一", [c("editor", "王小明"), c("editor", "李大同"), c("editor", "陳一")]),
        ("編輯:王小明", [c("editor", "王小明")]),
        ("編輯： 王小明 ", [c("editor", "王小明")]),
        ("編 輯：王小明", [c("editor", "王小明")]),
        ("译    者：王小明", [c("translator", "王小明")]),
        ("編緝：王小明", [c("editor", "王小明")]),
        ("編輯：王小明\\李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        ("編輯：王小明﹨李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        ("編輯：王小明∕李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        ("編輯：王小明 、李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        (
            "編輯：王小明/ 核稿：李大同、陳一",
            [c("editor", "王小明"), c("reviewer", "李大同"), c("reviewer", "陳一")],
        ),
        (
            "譯者：王小明、李大同/核稿：陳一",
            [c("translator", "王小明"), c("translator", "李大同"), c("reviewer", "陳一")],
        ),
        ("實習編譯：王小明/核稿：李大同", [c("compiler", "王小明"), c("reviewer", "李大同")]),
        ("实习编译：王小明/核稿：李大同", [c("compiler", "王小明"), c("reviewer", "李大同")]),
        ("編譯：王小明", [c("compiler", "王小明")]),
        ("攝影：王小明／編輯：李大同", [c("other", "王小明"), c("editor", "李大同")]),
        ("譯者：王小明核稿：李大同", [c("translator", "王小明"), c("reviewer", "李大同")]),  # no separator
        ("實習編譯：王小明：核稿：李大同", [c("compiler", "王小明"), c("reviewer", "李大同")]),  # colon typo
        ("王小明；李大同", [c("other", "王小明"), c("other", "李大同")]),
        ("王小明", [c("other", "王小明")]),
        ("王小明，李大同/核稿：陳一", [c("other", "王小明"), c("other", "李大同"), c("reviewer", "陳一")]),
        ("譯者：王小明/核稿：", [c("translator", "王小明")]),
        # a label followed by a comma or semicolon is a label, not a name
        ("譯者，王小明/核稿：李大同", [c("translator", "王小明"), c("reviewer", "李大同")]),
        ("譯者,王小明/核稿,李大同", [c("translator", "王小明"), c("reviewer", "李大同")]),
        ("編輯；王小明", [c("editor", "王小明")]),
        ("編輯;王小明", [c("editor", "王小明")]),
        ("編輯 ； 王小明/李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        ("编辑，王小明、李大同", [c("editor", "王小明"), c("editor", "李大同")]),
        ("編譯；王小明/核稿，李大同", [c("compiler", "王小明"), c("reviewer", "李大同")]),
        ("編輯：", []),
        ("", []),
    ],
)
def test_parse_credit_line(inner, expected):
    assert parse_credit_line(inner) == expected


def block(start, end, line, credits, code):
    return {"start": start, "end": end, "credit_line": line, "credits": credits, "roc_code": code}


def test_find_credit_block_basic():
    text = "市府表示將持續觀察。（譯者：張三豐/核稿：趙四海）1091001"
    assert find_credit_block(text) == block(
        10,
        len(text),
        "譯者：張三豐/核稿：趙四海",
        [c("translator", "張三豐"), c("reviewer", "趙四海")],
        "1091001",
    )
    assert text[:10] == "市府表示將持續觀察。"


def test_find_credit_block_variants():
    ed = [c("editor", "王小明")]
    assert find_credit_block("好。（編輯：王小明）1100207  ") == block(2, 19, "編輯：王小明", ed, "1100207")
    assert find_credit_block("好。(編輯：王小明)1100207") == block(2, 17, "編輯：王小明", ed, "1100207")
    assert find_credit_block("好。（編輯：王小明﹚1100207") == block(2, 17, "編輯：王小明", ed, "1100207")
    assert find_credit_block("好。（編輯：王小明）") == block(2, 10, "編輯：王小明", ed, None)
    assert find_credit_block("好。（編輯：王小明）990101") == block(2, 16, "編輯：王小明", ed, "990101")
    assert find_credit_block("好。（編輯：王小明）11060623") == block(2, 18, "編輯：王小明", ed, "11060623")
    assert find_credit_block("好。（編輯：王小明）10606") == block(2, 15, "編輯：王小明", ed, "10606")
    # odd tails seen in real posts: placeholder digits, a stray character, a full stop before the code
    assert find_credit_block("好。（編輯：王小明）10911xx") == block(2, 17, "編輯：王小明", ed, "10911xx")
    assert find_credit_block("好。（編輯：王小明）1090824\\") == block(2, 18, "編輯：王小明", ed, "1090824")
    assert find_credit_block("好。（編輯：王小明）1090824.") == block(2, 18, "編輯：王小明", ed, "1090824")
    assert find_credit_block("好（編輯：王小明）。1091226") == block(1, 17, "編輯：王小明", ed, "1091226")
    # simplified, as RFI republishes it
    assert find_credit_block("好。（译者：王小明/核稿：李大同）") == block(
        2, 17, "译者：王小明/核稿：李大同", [c("translator", "王小明"), c("reviewer", "李大同")], None
    )


def test_find_credit_block_label_then_comma_or_semicolon():
    text = "好。（譯者，王小明/核稿：李大同）1091023"
    assert find_credit_block(text) == block(
        2, len(text), "譯者，王小明/核稿：李大同", [c("translator", "王小明"), c("reviewer", "李大同")], "1091023"
    )
    text = "好。（編輯；王小明）1090905"
    assert find_credit_block(text) == block(2, len(text), "編輯；王小明", [c("editor", "王小明")], "1090905")
    # without a code too: the label makes it a credit line
    assert find_credit_block("好。（編輯；王小明）") == block(2, 10, "編輯；王小明", [c("editor", "王小明")], None)


def test_find_credit_block_only_block():
    assert find_credit_block("（译者：王小明）") == block(
        0, 8, "译者：王小明", [c("translator", "王小明")], None
    )


def test_find_credit_block_bare_names_need_a_code():
    text = "好。（王小明；李大同）1091001"
    assert find_credit_block(text) == block(
        2, len(text), "王小明；李大同", [c("other", "王小明"), c("other", "李大同")], "1091001"
    )
    assert find_credit_block("他說很好（王小明）") is None


def test_find_credit_block_bare_code():
    assert find_credit_block("收盤價為12.3元。1091204") == block(10, 17, None, [], "1091204")
    assert find_credit_block("1091004") == block(0, 7, None, [], "1091004")
    assert find_credit_block("結果如上。 990101") == block(6, 12, None, [], "990101")


@pytest.mark.parametrize(
    "text",
    [
        "詳情請洽詢專線 1100101",
        "服務電話： 1100101",
        "服務電話 ：\u30001100101 ",
        "電話號碼 1100101",
        "24小時熱線 1100101",
        "報名請傳真 1100101",
        "請撥總機轉分機 1100101",
        "聯絡人手機 1100101",
        "洽詢電話：(02) 1100101",
        "洽詢電話（02）1100101",
        "客服电话 1100101",
        "Tel: 1100101",
        "TEL 1100101",
        "tel. 1100101",
        "Fax： 1100101",
        "服務電話 １１００１０１",
    ],
)
def test_find_credit_block_phone_number_is_no_code(text):
    """Seven digits after a phone or fax label are a number to call, not a ROC code."""
    assert find_credit_block(text) is None


def test_find_credit_block_phone_label_spares_real_codes():
    ed = [c("editor", "王小明")]
    # a code right after a credit bracket, even in a paragraph that gives a phone number
    text = "洽詢專線 1100101。（編輯：王小明）1100102"
    assert find_credit_block(text) == block(13, len(text), "編輯：王小明", ed, "1100102")
    text = "請洽電話。（編輯：王小明）1100102"
    assert find_credit_block(text) == block(5, len(text), "編輯：王小明", ed, "1100102")
    # a bare code after sentence punctuation that follows a label, or after a word ending in "tel"
    assert find_credit_block("專線。1100101") == block(3, 10, None, [], "1100101")
    assert find_credit_block("住在 Grand Hotel 1100101") == block(15, 22, None, [], "1100101")


def test_find_credit_block_full_width_code() -> None:
    # the code is kept as written; the credit block is found as with ASCII digits
    assert find_credit_block("今天天氣很好。（編輯：方沛清）１０９１００１") == block(
        7, 22, "編輯：方沛清", [c("editor", "方沛清")], "１０９１００１")
    assert find_credit_block("收盤價為12.3元。１０９１２０４") == block(10, 17, None, [], "１０９１２０４")
    assert find_credit_block("結果如上。 ９９０１０１　") == block(6, 13, None, [], "９９０１０１")


def test_find_credit_block_takes_the_last_one():
    text = "甲（編輯：王小明）1091001乙。（編輯：李大同）1091002"
    assert find_credit_block(text) == block(18, 33, "編輯：李大同", [c("editor", "李大同")], "1091002")


@pytest.mark.parametrize(
    "text",
    [
        "照片（圖取自維基共享資源）",
        "（中央社記者王小明台北7日電）",
        "全年營收達1234567",
        "統一編號：12345678",
        "專線02-27001234",
        "總計4,500,000人。",
        "他說（男）",
        "（編輯：王小明）後來又說了別的話。",
        "（看完整報導）",
        "參加人數3091001",  # a code-like number glued to prose
        "",
    ],
)
def test_find_credit_block_no_misfire(text):
    assert find_credit_block(text) is None


@given(st.text())
def test_never_raises(text):
    found = find_credit_block(text)
    if found is not None:
        assert 0 <= found["start"] <= found["end"] == len(text)
        assert all(cr["name"] for cr in found["credits"])
    for cr in parse_credit_line(text):
        assert cr["name"] and cr["name"] == cr["name"].strip()
        assert cr["role"] in {"translator", "reviewer", "editor", "compiler", "other"}


@given(st.text(alphabet="編輯譯者核稿：:/、（）() 王小明0123456789", max_size=40))
def test_never_raises_on_credit_like_text(text):
    find_credit_block(text)
    parse_credit_line(text)


def test_cached_parse_returns_fresh_lists():
    first = parse_credit_line("編輯：王小明")
    first[0]["name"] = "changed"
    first.append(c("other", "x"))
    assert parse_credit_line("編輯：王小明") == [c("editor", "王小明")]
