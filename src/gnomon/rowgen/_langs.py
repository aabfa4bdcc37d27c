"""Made-up sentences in the languages of the multilingual benchmarks (XNLI, XStoryCloze): a
few words per language put together, enough for each language's script, spacing and sentence
mark to reach the templates and the tokenizer (not for meaning)."""

from __future__ import annotations

import random

# language -> (subjects, predicates, objects, word joiner, sentence mark)
BANKS: dict[str, tuple[list[str], list[str], list[str], str, str]] = {
    "ar": (
        ["الرجل", "المعلمة", "الطفل"],
        ["يقرأ", "يحمل", "يرى"],
        ["الكتاب", "الحجر", "النهر"],
        " ",
        ".",
    ),
    "bg": (
        ["Мъжът", "Учителката", "Детето"],
        ["чете", "носи", "вижда"],
        ["книгата", "камъка", "реката"],
        " ",
        ".",
    ),
    "de": (
        ["Der Mann", "Die Lehrerin", "Das Kind"],
        ["liest", "trägt", "sieht"],
        ["das Buch", "den Stein", "den Fluss"],
        " ",
        ".",
    ),
    "el": (
        ["Ο άντρας", "Η δασκάλα", "Το παιδί"],
        ["διαβάζει", "κουβαλά", "βλέπει"],
        ["το βιβλίο", "την πέτρα", "το ποτάμι"],
        " ",
        ".",
    ),
    "en": (
        ["The man", "The teacher", "The child"],
        ["reads", "carries", "sees"],
        ["the book", "the stone", "the river"],
        " ",
        ".",
    ),
    "es": (
        ["El hombre", "La maestra", "El niño"],
        ["lee", "lleva", "ve"],
        ["el libro", "la piedra", "el río"],
        " ",
        ".",
    ),
    "eu": (
        ["Gizonak", "Irakasleak", "Haurrak"],
        ["irakurtzen du", "darama", "ikusten du"],
        ["liburua", "harria", "ibaia"],
        " ",
        ".",
    ),
    "fr": (
        ["L'homme", "La maîtresse", "L'enfant"],
        ["lit", "porte", "voit"],
        ["le livre", "la pierre", "la rivière"],
        " ",
        ".",
    ),
    "hi": (
        ["आदमी", "शिक्षिका", "बच्चा"],
        ["पढ़ता है", "उठाता है", "देखता है"],
        ["किताब", "पत्थर", "नदी"],
        " ",
        "।",
    ),
    "id": (
        ["Pria itu", "Guru itu", "Anak itu"],
        ["membaca", "membawa", "melihat"],
        ["buku", "batu", "sungai"],
        " ",
        ".",
    ),
    "my": (
        ["လူကြီး", "ဆရာမ", "ကလေး"],
        ["ဖတ်သည်", "သယ်သည်", "မြင်သည်"],
        ["စာအုပ်", "ကျောက်ခဲ", "မြစ်"],
        " ",
        "။",
    ),
    "ru": (
        ["Мужчина", "Учительница", "Ребёнок"],
        ["читает", "несёт", "видит"],
        ["книгу", "камень", "реку"],
        " ",
        ".",
    ),
    "sw": (
        ["Mwanamume", "Mwalimu", "Mtoto"],
        ["anasoma", "anabeba", "anaona"],
        ["kitabu", "jiwe", "mto"],
        " ",
        ".",
    ),
    "te": (
        ["ఆ వ్యక్తి", "ఉపాధ్యాయురాలు", "పిల్లవాడు"],
        ["చదువుతాడు", "మోస్తాడు", "చూస్తాడు"],
        ["పుస్తకం", "రాయి", "నది"],
        " ",
        ".",
    ),
    "th": (["ผู้ชาย", "คุณครู", "เด็ก"], ["อ่าน", "แบก", "เห็น"], ["หนังสือ", "ก้อนหิน", "แม่น้ำ"], "", ""),
    "tr": (
        ["Adam", "Öğretmen", "Çocuk"],
        ["okuyor", "taşıyor", "görüyor"],
        ["kitabı", "taşı", "nehri"],
        " ",
        ".",
    ),
    "ur": (
        ["آدمی", "استانی", "بچہ"],
        ["پڑھتا ہے", "اٹھاتا ہے", "دیکھتا ہے"],
        ["کتاب", "پتھر", "دریا"],
        " ",
        "۔",
    ),
    "vi": (
        ["Người đàn ông", "Cô giáo", "Đứa trẻ"],
        ["đọc", "mang", "nhìn thấy"],
        ["cuốn sách", "hòn đá", "dòng sông"],
        " ",
        ".",
    ),
    "zh": (["那个男人", "老师", "孩子"], ["读", "搬", "看见"], ["书", "石头", "河"], "", "。"),
}


def sentence(rng: random.Random, language: str, short: bool = False) -> str:
    """Subject, predicate and object; `short`: subject and predicate only (scripts the tiny
    tokenizer spells byte by byte make long continuations, whose summed loglikelihoods two
    float32 engines can only agree on to a few ulps)."""
    subjects, predicates, objects, joiner, mark = BANKS[language]
    words = [rng.choice(subjects), rng.choice(predicates)]
    if not short:
        words.append(rng.choice(objects))
    return joiner.join(words) + mark
