"""extract_cna_fields / extract_credits_generic (pipeline.cna.extract). Invented texts."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from pipeline.cna.extract import extract_cna_fields, extract_credits_generic
from pipeline.schema import WARNING_CODES

PUB = int(dt.datetime(2020, 10, 1, 2, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)  # 10:00 Taipei


def test_typical_post():
    paras = [
        "（中央社記者王小明、李大同台北1日電）市府今天宣布新措施。",
        "措施明天起實施。",
        "市府表示將持續觀察。（譯者：張三豐/核稿：趙四海）1091001",
    ]
    clean, fields, warnings = extract_cna_fields(paras, PUB)
    assert clean == ["市府今天宣布新措施。", "措施明天起實施。", "市府表示將持續觀察。"]
    assert fields == {
        "dateline": "中央社記者王小明、李大同台北1日電",
        "dateline_place": "台北",
        "dateline_day": 1,
        "dateline_kind": "電",
        "reporters": ["王小明", "李大同"],
        "credit_line": "譯者：張三豐/核稿：趙四海",
        "credits": [{"role": "translator", "name": "張三豐"}, {"role": "reviewer", "name": "趙四海"}],
        "roc_code": "1091001",
        "roc_date": dt.date(2020, 10, 1),
    }
    assert warnings == []
    assert paras[0].startswith("（中央社")  # input not modified


def test_one_paragraph_post():
    clean, fields, warnings = extract_cna_fields(
        ["（中央社台北1日電）短訊一則。（編輯：王小明）1091001"], PUB
    )
    assert clean == ["短訊一則。"]
    assert (fields["dateline"], fields["credit_line"], fields["roc_code"]) == (
        "中央社台北1日電",
        "編輯：王小明",
        "1091001",
    )
    assert warnings == []


def test_dateline_only_paragraph_is_dropped():
    clean, fields, _ = extract_cna_fields(["（中央社台北1日電）", "正文。（編輯：王小明）1091001"], PUB)
    assert clean == ["正文。"]
    assert fields["dateline_place"] == "台北"


def test_credit_block_alone_and_code_in_own_paragraph():
    clean, fields, _ = extract_cna_fields(
        ["（中央社台北1日電）正文。", "（編輯：王小明/李大同）", "1091001"], PUB
    )
    assert clean == ["正文。"]
    assert fields["credits"] == [{"role": "editor", "name": "王小明"}, {"role": "editor", "name": "李大同"}]
    assert fields["roc_code"] == "1091001"
    clean, fields, _ = extract_cna_fields(["（中央社台北1日電）正文。（編輯：王小明）", "1091001"], PUB)
    assert (clean, fields["credit_line"], fields["roc_code"]) == (["正文。"], "編輯：王小明", "1091001")


def test_text_after_the_credit_block_is_kept():
    paras = ["（中央社台北1日電）演說全文如下。（編輯：王小明）1091001", "各位好，", "謝謝大家。"]
    clean, fields, _ = extract_cna_fields(paras, PUB)
    assert clean == ["演說全文如下。", "各位好，", "謝謝大家。"]
    assert fields["credit_line"] == "編輯：王小明"


def test_bare_code():
    clean, fields, warnings = extract_cna_fields(["（中央社台北1日電）開盤價為29.5元。1091001"], PUB)
    assert clean == ["開盤價為29.5元。"]
    assert (fields["credit_line"], fields["credits"], fields["roc_code"]) == (None, [], "1091001")
    assert warnings == []


def test_missing_pieces():
    clean, fields, warnings = extract_cna_fields(["沒有電頭的文章。", "最後一段。"], None)
    assert clean == ["沒有電頭的文章。", "最後一段。"]
    assert fields == {
        "dateline": None,
        "dateline_place": None,
        "dateline_day": None,
        "dateline_kind": None,
        "reporters": [],
        "credit_line": None,
        "credits": [],
        "roc_code": None,
        "roc_date": None,
    }
    assert warnings == ["no_dateline"]
    assert extract_cna_fields([], None) == ([], fields, ["no_dateline"])


def test_label_before_dateline_becomes_its_own_paragraph():
    clean, fields, _ = extract_cna_fields(["專題報導（中央社記者王小明東京1日專電）正文。"], PUB)
    assert clean == ["專題報導", "正文。"]
    assert fields["reporters"] == ["王小明"]


def test_dateline_after_an_update_note():
    clean, fields, warnings = extract_cna_fields(["（更新）", "（中央社台北1日電）正文。"], PUB)
    assert clean == ["（更新）", "正文。"]
    assert fields["dateline"] == "中央社台北1日電"
    assert warnings == []


def test_warnings():
    paras = [
        "（中央社台北1日電）甲。（編輯：王小明）1091001",
        "（中央社台中1日電）乙。（編輯：李大同）1040426",
    ]
    clean, fields, warnings = extract_cna_fields(paras, PUB)
    assert clean == ["甲。（編輯：王小明）1091001", "（中央社台中1日電）乙。"]
    assert fields["roc_code"] == "1040426"
    assert fields["roc_date"] == dt.date(2015, 4, 26)
    assert warnings == ["roc_date_far_from_published", "several_datelines"]

    _, fields, warnings = extract_cna_fields(["（中央社台北1日電）甲。（編輯：王小明）11060623"], PUB)
    assert (fields["roc_code"], fields["roc_date"], warnings) == ("11060623", None, ["roc_code_malformed"])
    _, fields, warnings = extract_cna_fields(["（中央社台北1日電）甲。（編輯：王小明）1091341"], PUB)
    assert (fields["roc_code"], fields["roc_date"], warnings) == ("1091341", None, ["roc_code_invalid_date"])
    _, fields, warnings = extract_cna_fields(["（中央社台北1日電）甲。（編輯：）1091001"], PUB)
    assert (fields["credit_line"], fields["credits"], warnings) == ("編輯：", [], ["credits_unparsed"])


def test_generic_rfi_copy():
    paras = [
        "（法新社巴黎1日电）法国政府今天宣布新措施。",
        "措施明天起实施。（译者：张三丰/核稿：赵四海）",
        "© 2020 AFP",
    ]
    clean, fields, warnings = extract_credits_generic(paras, PUB)
    assert clean == ["法国政府今天宣布新措施。", "措施明天起实施。", "© 2020 AFP"]
    assert fields["dateline"] == "法新社巴黎1日电"
    assert fields["dateline_place"] == "巴黎"
    assert fields["credits"] == [
        {"role": "translator", "name": "张三丰"},
        {"role": "reviewer", "name": "赵四海"},
    ]
    assert (fields["roc_code"], fields["roc_date"]) == (None, None)
    assert warnings == []


def test_generic_block_alone_and_no_dateline():
    clean, fields, warnings = extract_credits_generic(
        ["正文。", "（实习编译：张三丰/核稿：赵四海）", "©AFP"], None
    )
    assert clean == ["正文。", "©AFP"]
    assert fields["credits"] == [
        {"role": "compiler", "name": "张三丰"},
        {"role": "reviewer", "name": "赵四海"},
    ]
    assert warnings == []


def test_generic_does_not_take_bare_numbers():
    clean, fields, warnings = extract_credits_generic(["正文。", "他说。1091001"], None)
    assert clean == ["正文。", "他说。1091001"]
    assert fields["roc_code"] is None
    assert warnings == []


def test_generic_cna_copy_with_code():
    clean, fields, _ = extract_credits_generic(
        ["（中央社台北9日电）正文。（编辑：王小明/李大同）1100209"], None
    )
    assert clean == ["正文。"]
    assert fields["dateline_kind"] == "电"
    assert fields["credits"] == [{"role": "editor", "name": "王小明"}, {"role": "editor", "name": "李大同"}]
    assert fields["roc_date"] == dt.date(2021, 2, 9)


def _check(result):
    clean, fields, warnings = result
    assert all(isinstance(p, str) and p.strip() for p in clean)
    assert set(fields) == {
        "dateline",
        "dateline_place",
        "dateline_day",
        "dateline_kind",
        "reporters",
        "credit_line",
        "credits",
        "roc_code",
        "roc_date",
    }
    assert all(w in WARNING_CODES for w in warnings)


@given(st.lists(st.text()), st.one_of(st.none(), st.integers()))
def test_never_raises(paras, published):
    _check(extract_cna_fields(paras, published))
    _check(extract_credits_generic(paras, published))


@given(st.lists(st.text(alphabet="（）中央社記者台北1日電編輯：王小明/。1090", max_size=30), max_size=4))
def test_never_raises_on_cna_like_text(paras):
    _check(extract_cna_fields(paras, PUB))
    _check(extract_credits_generic(paras, PUB))


# Inputs on which a backtracking regex would run for minutes or hours (" " * 20000 alone took
# 150 s before the dateline regex was bounded): every call must stay linear in the text.
_HUGE = 15_000_000
_PATHOLOGICAL = {
    "spaces": " " * _HUGE,
    "prose": "這是一段文字，" * (_HUGE // 7) + "（編輯：王小明）1091001",
    "label then spaces": "特派員" + " " * 1_000_000 + "（中央社記者王小明台北7日電）正文",
    "agency then spaces": "（中央社" + "\u3000" * 1_000_000 + "）",
    "spaces then code": "好" + " " * 1_000_000 + "1091001",
    "open brackets": "（" * 100_000,
    "bracket pairs": "（）" * 100_000,
    "agencies": "（中央社" * 100_000,
    "credit blocks": "（編輯：王小明）1091001" * 100_000,
    "labels": "編輯：" * 100_000 + "1091001",
    "newlines": "\n" * 1_000_000 + "x",
}


def _alarm(seconds):
    """Fail (instead of hanging) when the block runs longer than `seconds` (Unix main thread)."""
    import contextlib
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()

    def handler(_signum, _frame):
        raise TimeoutError(f"took more than {seconds}s")

    @contextlib.contextmanager
    def guard():
        old = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    return guard()


def test_pathological_inputs_finish():
    from pipeline.cna.credits import find_credit_block
    from pipeline.cna.dateline import count_datelines, parse_dateline

    for name, text in _PATHOLOGICAL.items():
        with _alarm(20):
            try:
                find_credit_block(text)
                parse_dateline(text)
                count_datelines([text])
                _check(extract_cna_fields([text], PUB))
                _check(extract_credits_generic([text, text], PUB))
            except TimeoutError as exc:
                raise AssertionError(f"{name}: {exc}") from None
    # the long paragraph still gives its credits; the dateline after a blank run is still read
    _paras, fields, _w = extract_cna_fields([_PATHOLOGICAL["prose"]], PUB)
    assert fields["credits"] == [{"role": "editor", "name": "王小明"}] and fields["roc_code"] == "1091001"
    assert parse_dateline("  \n  （中央社記者王小明台北7日電）正文")["end"] == 20


def test_roc_code_written_twice_is_removed_twice() -> None:
    paras = ["（中央社記者王小明台南9日電）本文第一段。", "最後一段文字。1090909（編輯：李大同）1090909"]
    clean, fields, _ = extract_cna_fields(paras, 1599609600000)
    assert clean == ["本文第一段。", "最後一段文字。"]
    assert fields["roc_code"] == "1090909"
    assert fields["credits"] == [{"role": "editor", "name": "李大同"}]
