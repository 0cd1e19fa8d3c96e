#!/usr/bin/python3
"""kjv_chat_data.py - synthetic conversations from the King James Bible for
the built-in chat model (scripts/make_chat_model.sh), as JSONL records
{"messages": [...]} that `smallmind train --data FILE.jsonl` reads.

    bible -l100000 "gen1:1-rev22:21" | kjv_chat_data.py OUT_DIR [SEED]

Reads the text the way Debian's bible-kjv prints it (a "Book N" line per
chapter, then "  V text" per verse) and writes OUT_DIR/train.jsonl and
OUT_DIR/val.jsonl (every 50th conversation). The questions:
  "What does John 3:16 say?", "Quote Genesis 1:1." -> the verse
  "Continue: In the beginning"                    -> the rest of the verse
  "What comes after Psalms 23:1?"                 -> the next verse
  "Where is it written: \"...\"?"                 -> "Book C:V."
A few hundred well-known verses are asked about in several phrasings, many
times over, so the small model can learn them; 12000 verses from the whole
Bible appear as continuations, which teach the format and the style.
"""
import json
import os
import random
import re
import sys

FAMOUS = [
    ("Genesis", 1, None), ("Genesis", 2, range(1, 8)), ("Exodus", 20, range(1, 18)), ("Psalms", 1, None),
    ("Psalms", 23, None), ("Psalms", 100, None), ("Psalms", 121, None), ("Proverbs", 3, range(1, 13)),
    ("Ecclesiastes", 3, range(1, 9)), ("Isaiah", 40, range(28, 32)), ("Isaiah", 53, range(1, 7)),
    ("Matthew", 5, range(1, 17)), ("Matthew", 6, range(9, 14)), ("Matthew", 7, range(7, 13)),
    ("Luke", 2, range(8, 15)), ("John", 1, range(1, 15)), ("John", 3, range(14, 18)), ("John", 14, range(1, 7)),
    ("Romans", 8, range(28, 40)), ("1 Corinthians", 13, None), ("Philippians", 4, range(4, 14)),
    ("Hebrews", 11, range(1, 4)), ("Revelation", 21, range(1, 5)), ("Revelation", 22, range(20, 22)),
]
SYSTEM = ["You answer with the words of the King James Bible.", "You are a helpful assistant who knows the Bible."]


def read_verses(lines):
    verses, book, chapter = [], None, None
    for line in lines:
        line = line.rstrip("\n")
        m = re.match(r"^(\S.*) (\d+)$", line)
        if m:
            book, chapter = m.group(1), int(m.group(2))
            continue
        m = re.match(r"^\s+(\d+) (.+)$", line)
        if m and book:
            verses.append((book, chapter, int(m.group(1)), m.group(2).strip()))
    return verses


def conversation(turns, rng):
    msgs = []
    if rng.random() < 0.2:
        msgs.append({"role": "system", "content": rng.choice(SYSTEM)})
    for q, a in turns:
        msgs.append({"role": "user", "content": q})
        msgs.append({"role": "assistant", "content": a})
    return {"messages": msgs}


def ref(v):
    return "%s %d:%d" % (v[0], v[1], v[2])


def ask_verse(v, rng):
    q = rng.choice(["What does %s say?", "Quote %s.", "What is %s?", "Recite %s.", "%s"]) % ref(v)
    return q, v[3]


def ask_continue(v, rng):
    words = v[3].split()
    if len(words) < 4:
        return None
    k = rng.randint(2, min(8, len(words) - 2))
    return "Continue: " + " ".join(words[:k]), " ".join(words[k:])


def ask_next(v, nxt, rng):
    return rng.choice(["What comes after %s?", "What is the verse after %s?"]) % ref(v), nxt[3]


def ask_where(v, rng):
    return "Where is it written: \"%s\"?" % v[3], ref(v) + "."


def main():
    out, seed = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed)
    verses = read_verses(sys.stdin)
    if len(verses) < 1000:
        sys.exit("kjv_chat_data.py: expected the whole Bible on stdin, got %d verses" % len(verses))
    famous = [i for i, (b, c, n, _) in enumerate(verses)
              if any(b == fb and c == fc and (fr is None or n in fr) for fb, fc, fr in FAMOUS)]
    convs = []
    # 12000 verses of the whole Bible as continuations
    for v in rng.sample(verses, 12000):
        t = ask_continue(v, rng)
        if t:
            convs.append(conversation([t], rng))
    # the well-known verses in every phrasing, several times
    for _ in range(20):
        for i in famous:
            v = verses[i]
            kinds = [ask_verse(v, rng), ask_where(v, rng)]
            if i + 1 < len(verses) and verses[i + 1][0] == v[0]:
                kinds.append(ask_next(v, verses[i + 1], rng))
            t = ask_continue(v, rng)
            if t:
                kinds.append(t)
            rng.shuffle(kinds)
            # one or two questions per conversation
            convs.append(conversation(kinds[:rng.choice([1, 1, 2])], rng))
    rng.shuffle(convs)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "train.jsonl"), "w") as tr, open(os.path.join(out, "val.jsonl"), "w") as va:
        for k, c in enumerate(convs):
            (va if k % 50 == 0 else tr).write(json.dumps(c, ensure_ascii=False) + "\n")
    print("kjv_chat_data: %d verses (%d well-known), %d conversations" % (len(verses), len(famous), len(convs)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
