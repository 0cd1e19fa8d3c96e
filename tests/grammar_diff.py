#!/usr/bin/env python3
"""grammar_diff.py - differential test of our GBNF engine against llama.cpp's.

Generates random grammars (literals, classes, negated classes, ".", escapes,
groups, alternatives, * + ? {m} {m,} {m,n}, references, recursion, and now
and then an undefined rule or a left recursion) and strings (derived from
each grammar, and mutated), then compares the verdicts of
build/grammar_check (ours) and grammar_oracle (llama.cpp's engine): does
the grammar build, and is each string accepted fully.

The generator stays inside the language both engines define the same way:
it never repeats without bound something that can match the empty string
(llama.cpp does not detect that left recursion and overflows its stack), and
never writes the constructs we refuse on purpose (a rule defined twice,
"[]", reversed ranges, {m,n} with n < m, an undefined name used only as
name{0}).

Usage (the oracle needs a llama.cpp checkout at c392e509 with libllama built):
  cc -O2 -Iinclude tests/tools/grammar_check.c build/libsmallmind.a -lm -lpthread -o build/grammar_check
  g++ -std=c++17 -O1 -I$LLAMA/src -I$LLAMA/include -I$LLAMA/ggml/include tests/tools/grammar_oracle.cpp \\
      -L$LLAMA/build/bin -lllama -Wl,-rpath,$LLAMA/build/bin -o build/grammar_oracle
  python3 tests/grammar_diff.py build/grammar_check build/grammar_oracle [cases] [seed]
Prints "grammar_diff: N passed, N failed" (a case passes when every verdict agrees).
"""
import random
import subprocess
import sys

ALPHA = ['a', 'b', 'c', 'x', '0', '1', '-', ' ', '\u00e9', '\U0001F535', '"', '\\', '\n', ']', '[', '^']


def esc(c, in_class, rng):
    o = ord(c)
    if c in '"\\' or (in_class and c in '[]-^'):
        return '\\x%02X' % o if rng.random() < 0.5 or c in '-^' else '\\' + c
    if c == '\n':
        return '\\n'
    r = rng.random()
    if r < 0.15:
        return '\\x%02X' % o if o < 0x100 else '\\u%04X' % o if o < 0x10000 else '\\U%08X' % o
    if r < 0.2 and o < 0x10000:
        return '\\u%04X' % o
    return c


class Gen:
    def __init__(self, rng):
        self.rng = rng

    def item(self, rule, n_rules, depth):
        r = self.rng.random()
        if r < 0.3 or depth > 2:
            it = ('lit', ''.join(self.rng.choice(ALPHA) for _ in range(self.rng.randint(1, 3))))
        elif r < 0.5:
            chars = sorted(set(self.rng.choice(ALPHA) for _ in range(self.rng.randint(1, 4))), key=ord)
            ranges = []
            i = 0
            while i < len(chars):
                if i + 1 < len(chars) and self.rng.random() < 0.4:
                    ranges.append((chars[i], chars[i + 1]))
                    i += 2
                else:
                    ranges.append((chars[i], chars[i]))
                    i += 1
            it = ('cls', self.rng.random() < 0.3, ranges)
        elif r < 0.58:
            it = ('any',)
        elif r < 0.78:
            it = ('ref', self.rng.randint(rule + 1, n_rules - 1)) if rule + 1 < n_rules else ('any',)
        elif r < 0.79:
            it = ('undef',)
        else:
            it = ('grp', [self.seq(rule, n_rules, depth + 1) for _ in range(self.rng.randint(1, 3))])
        q = None
        r = self.rng.random()
        if r < 0.1: q = ('*',)
        elif r < 0.2: q = ('+',)
        elif r < 0.3: q = ('?',)
        elif r < 0.36:
            m = self.rng.randint(0, 3)
            q = ('{}', m, m)
        elif r < 0.4: q = ('{}', self.rng.randint(0, 2), None)
        elif r < 0.46:
            m = self.rng.randint(0, 2)
            q = ('{}', m, m + self.rng.randint(0, 2))
        return (it, q)

    def seq(self, rule, n_rules, depth):
        return [self.item(rule, n_rules, depth) for _ in range(self.rng.randint(0 if depth else 1, 3))]

    def grammar(self):
        n = self.rng.randint(1, 4)
        rules = []
        for i in range(n):
            alts = [self.seq(i, n, 0) for _ in range(self.rng.randint(1, 3))]
            if self.rng.random() < 0.2:   # recursion behind a terminal, with a way out
                alts.append([(('lit', '('), None), (('self', i), None), (('lit', ')'), None)])
            rules.append(alts)
        self.rules = rules
        self.nullable = [False] * n
        for i in reversed(range(n)):
            self.nullable[i] = any(all(self.item_nullable(it) for it in alt) for alt in rules[i])
        for i in reversed(range(n)):   # drop unbounded repeats of nullable items
            rules[i] = [[self.fix(it) for it in alt] for alt in rules[i]]
            self.nullable[i] = any(all(self.item_nullable(it) for it in alt) for alt in rules[i])
        self.left_rec = self.rng.random() < 0.04
        return self.render()

    def sym_nullable(self, it):
        k = it[0]
        if k in ('lit', 'cls', 'any', 'undef'): return k == 'undef'
        if k == 'ref': return self.nullable[it[1]]
        if k == 'self': return False
        return any(all(self.item_nullable(x) for x in alt) for alt in it[1])

    def item_nullable(self, item):
        it, q = item
        if q and (q[0] in '*?' or (q[0] == '{}' and q[1] == 0)): return True
        return self.sym_nullable(it)

    def fix(self, item):
        it, q = item
        if it[0] == 'grp':
            it = ('grp', [[self.fix(x) for x in alt] for alt in it[1]])
        if q and (q[0] in '*+' or (q[0] == '{}' and q[2] is None)) and self.sym_nullable(it):
            q = None
        if it[0] == 'undef' and q and q[0] == '{}' and q[2] == 0:
            q = None   # llama.cpp may accept a name used only as x{0} and never defined; we refuse it
        return (it, q)

    def render_item(self, item):
        it, q = item
        k = it[0]
        if k == 'lit': s = '"' + ''.join(esc(c, False, self.rng) for c in it[1]) + '"'
        elif k == 'cls':
            s = '[' + ('^' if it[1] else '') + ''.join(
                esc(a, True, self.rng) + ('' if a == b else '-' + esc(b, True, self.rng)) for a, b in it[2]) + ']'
        elif k == 'any': s = '.'
        elif k in ('ref', 'self'): s = 'r%d' % it[1]
        elif k == 'undef': s = 'undefined-rule'
        else: s = '(' + ' | '.join(' '.join(self.render_item(x) for x in alt) for alt in it[1]) + ')'
        if q:
            if q[0] == '{}':
                s += '{%d}' % q[1] if q[1] == q[2] else '{%d,}' % q[1] if q[2] is None else '{%d,%d}' % (q[1], q[2])
            else:
                s += q[0]
        return s

    def render(self):
        lines = ['root ::= r0']
        for i, alts in enumerate(self.rules):
            lines.append('r%d ::= ' % i + ' | '.join(' '.join(self.render_item(x) for x in alt) for alt in alts))
        if self.left_rec:
            lines.append('r%d ::= r%d "a" | "b"' % (len(self.rules), len(self.rules)))
        return '\n'.join(lines) + '\n'

    # Random strings of the grammar.
    def sample_rule(self, i, depth):
        alts = self.rules[i]
        if depth > 4:
            alts = [a for a in alts if not any(it[0] == 'self' for it, _ in a)] or alts
        return ''.join(self.sample_item(x, depth + 1) for x in self.rng.choice(alts))

    def sample_item(self, item, depth):
        it, q = item
        if q is None: n = 1
        elif q[0] == '*': n = self.rng.randint(0, 3)
        elif q[0] == '+': n = self.rng.randint(1, 3)
        elif q[0] == '?': n = self.rng.randint(0, 1)
        else: n = self.rng.randint(q[1], q[2] if q[2] is not None else q[1] + 3)
        return ''.join(self.sample_sym(it, depth) for _ in range(n))

    def sample_sym(self, it, depth):
        k = it[0]
        if k == 'lit': return it[1]
        if k == 'any': return self.rng.choice(ALPHA)
        if k == 'cls':
            if it[1]:
                outside = [c for c in ALPHA + ['q', 'Z', '\u4e00'] if not any(ord(a) <= ord(c) <= ord(b) for a, b in it[2])]
                return self.rng.choice(outside) if outside else 'q'
            a, b = self.rng.choice(it[2])
            while True:
                c = self.rng.randint(ord(a), ord(b))
                if not 0xD800 <= c <= 0xDFFF: return chr(c)
        if k in ('ref', 'self'): return self.sample_rule(it[1], depth)
        if k == 'undef': return 'u'
        return ''.join(self.sample_item(x, depth + 1) for x in self.rng.choice(it[1]))

    def strings(self, count):
        out = []
        for _ in range(count):
            s = self.sample_rule(0, 0)
            r = self.rng.random()
            if r < 0.15 and s: s = s[:self.rng.randrange(len(s))]
            elif r < 0.3: s = s + self.rng.choice(ALPHA)
            elif r < 0.45 and s:
                p = self.rng.randrange(len(s))
                s = s[:p] + self.rng.choice(ALPHA) + s[p + 1:]
            out.append(s)
        return out


def block(tag, s):
    b = s.encode('utf-8')
    return ('%s %d\n' % (tag, len(b))).encode() + b


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    ours, oracle = sys.argv[1], sys.argv[2]
    cases = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rng = random.Random(seed)
    data, expect = [], []
    for _ in range(cases):
        g = Gen(rng)
        text = g.grammar()
        strs = g.strings(8)
        data.append(block('G', text) + b''.join(block('S', s) for s in strs) + b'E\n')
        expect.append((text, strs))
    feed = b''.join(data)
    a = subprocess.run([ours], input=feed, capture_output=True).stdout.decode().split('E\n')
    b = subprocess.run([oracle], input=feed, capture_output=True).stdout.decode().split('E\n')
    passed = failed = accepted = built = 0
    for i, (text, strs) in enumerate(expect):
        va, vb = a[i].split(), b[i].split() if i < len(b) else []
        if va == vb:
            passed += 1
            built += va[:2] == ['P', '1']
            accepted += va.count('1') - (va[:2] == ['P', '1'])
        else:
            failed += 1
            if failed <= 5:
                print('case %d differs:\n%s' % (i, text))
                for s, x, y in zip(strs, va[2:], vb[2:]):
                    if x != y: print('  %r: ours %s, llama.cpp %s' % (s, x, y))
                print('  ours: %s\n  llama.cpp: %s' % (' '.join(va[:2]), ' '.join(vb[:2])))
    print('(%d grammars built, %d strings accepted)' % (built, accepted))
    print('grammar_diff: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
