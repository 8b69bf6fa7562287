"""CNA's markup: which boxes in a cna.com.tw feed item are images, related links or clutter."""

from __future__ import annotations

from pipeline.clean import GENERIC_RULES, MarkupRules

CNA_RULES = MarkupRules(
    drop_classes=GENERIC_RULES.drop_classes
    | frozenset(
        {
            # ad slots at the end of the article
            "bottomArticleBanner",
            "adslot_infinite",
            "pcBox",
            "mbBox",
            # glossary pop-up box: the term stays in the sentence, the box goes
            "dictionary-box",
            "dic-icon",
            # embeds: video, tweets, Instagram, Facebook, YouTube, Getty, infographics, slides
            "VOD",
            "twitterMedia",
            "instagramMedia",
            "facebookMedia",
            "youtubeBox",
            "youtube",
            "noWidthMedia",
            "infogram-embed",
            "gie-single",
            # newsletter promos, digest link lists, author boxes, subscription forms
            "myCustom",
            "SubscriptionInner",
            "insertGroup",
            "topicbox",
            "book",
            # the suicide-prevention notice appended to some stories
            "warning",
        }
    ),
    image_classes=frozenset({"fullPic", "floatImg"}),
    caption_classes=frozenset({"picinfo"}),
    # 延伸閱讀 blocks and link-list boxes; their links are kept as `related`, even inside dropped boxes
    related_classes=frozenset({"moreArticle", "insertGroup"}),
    related_link_classes=frozenset({"moreArticle-link", "insert"}),
    related_link_prefixes=("延伸閱讀",),
    footer_prefixes=GENERIC_RULES.footer_prefixes,
    drop_ids_prefixes=GENERIC_RULES.drop_ids_prefixes + ("adslot",),
)
