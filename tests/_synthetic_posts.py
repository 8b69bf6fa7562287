"""Synthetic raw posts in the archiver's format (no corpus needed): CNA posts with datelines,
credits and ROC codes, other feeds, a few duplicates and a few broken files. Deterministic."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

_WORDS = ("政府 今天 宣布 新的 措施 將於 下週 生效 立法院 審議 預算 經濟 成長 疫情 防疫 交通 部長 表示 "
          "記者會 民眾 關注 地方 選舉 國際 合作 貿易 協定 科技 產業 發展 教育 文化 觀光 旅遊 氣象 颱風").split()
_PLACES = ("台北", "台中", "高雄", "花蓮縣", "華盛頓", "東京", "倫敦", "巴黎")
_REPORTERS = ("王小明", "李大華", "陳美玲", "林志強", "張家豪")
_EDITORS = ("周文彬", "吳雅婷", "鄭建國")
_FEEDS = (("BBC", "https://www.bbc.com/zhongwen/trad/world-{n}"),
          ("Solidot", "https://www.solidot.org/story?sid={n}"),
          ("法广", "https://www.rfi.fr/tw/{n}"))
_BASE = datetime(2020, 9, 1, tzinfo=timezone.utc)


def _sentence(rng: random.Random) -> str:
    return "".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 18))) + "。"


def _paragraphs(rng: random.Random, n: int) -> list[str]:
    return ["".join(_sentence(rng) for _ in range(rng.randint(1, 4))) for _ in range(n)]


def make_post(rng: random.Random, n: int, version: int = 0) -> tuple[str, str]:
    """(relative path, text) of post number n; `version` changes its body (an edit)."""
    when = _BASE + timedelta(minutes=37 * n + rng.randint(0, 30))
    day = when.strftime("%Y-%m-%d")
    epoch = int(when.timestamp() * 1000)
    paras = _paragraphs(rng, rng.randint(2, 8))
    if version:
        paras.append(f"（更新第{version}版）" + _sentence(rng))
    title = paras[0][:18]
    if n % 5 != 4:  # CNA
        tw = when.astimezone(timezone(timedelta(hours=8)))
        url = f"https://www.cna.com.tw/news/aopl/{tw:%Y%m%d}{n % 10000:04d}.aspx"
        author = "(臺)中央社CNA"
        roc = f"{tw.year - 1911}{tw:%m%d}"
        dateline = f"（中央社記者{rng.choice(_REPORTERS)}{rng.choice(_PLACES)}{tw.day}日電）"
        credit = f"（編輯：{rng.choice(_EDITORS)}）{roc}"
        body = [f"<p>{dateline}{paras[0]}</p>", *(f"<p>{p}</p>" for p in paras[1:-1]),
                f"<p>{paras[-1]}{credit}</p>"]
        if n % 3 == 0:
            body.insert(1, f'<div class="floatImg center"><img data-src="https://img.example/{n}.jpg">'
                           f'<div class="picinfo">圖說{n}</div></div>')
        body.append('<div class="moreArticle"><a class="moreArticle-link" href="https://www.cna.com.tw/news/'
                    f'aopl/{tw:%Y%m%d}9{n % 1000:03d}.aspx">延伸閱讀標題{n}</a></div>')
    else:
        author, pattern = _FEEDS[n % len(_FEEDS)]
        url = pattern.format(n=54000000 + n)
        body = [f"<p>{p}</p>" for p in paras]
    html = ("<div>" + "".join(body) + '<div>获取更多RSS：<br><a href="https://feedx.net">'
            "https://feedx.net</a></div></div>")
    text = (f'---\nlayout: post\ntitle: "{title}"\ndate: {when:%Y-%m-%dT%H:%M:%S}.000Z\nauthor: {author}\n'
            f"from: {url}\ntags: [ {author} ]\ncategories: [ {author} ]\n---\n<!--{epoch}-->\n"
            f"[{title}]({url})\n------\n\n{html}\n")
    return f"archived/{day}/{day}-post {n:05d}.md", text


def write_posts(root: Path, count: int, seed: int = 7) -> list[Path]:
    """Write `count` posts under root (plus a duplicate every 97 and a broken file every 211)."""
    rng = random.Random(seed)
    paths = []
    for n in range(count):
        rel, text = make_post(random.Random(rng.random()), n)
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if n % 211 == 210:
            p.write_bytes(b"")
        elif n % 97 == 96:  # a re-crawl of the previous post under another name
            prev = paths[-1]
            p.write_bytes(prev.read_bytes().replace(b'title: "', b'title: "[re] '))
        else:
            p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
