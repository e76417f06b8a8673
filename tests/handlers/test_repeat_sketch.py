"""The repeat index's compact representation (handlers/repeats.py): its MinHash and band layout
are datasketch's, bit for bit, and its query answers what an exact check of the same letters
answers, after inserts, replacements, removals and pruning.

The oracle here keeps each letter as a Python set of its shingles and asks datasketch for the
MinHash and the bands: nothing of the index's own storage is reused."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from handlers.repeats import (
    DEFAULT_NUM_PERM,
    DEFAULT_THRESHOLD,
    MAX_EXAMINED,
    RepeatIndex,
    band_layout,
    load_report_text,
    minhash,
)

ROOT = Path(__file__).resolve().parents[2]

# Written for this test: clauses of letters about a district's everyday troubles.
CLAUSES = [
    "我们楼下的窨井盖缺了一块", "晚上骑电动车的人经过很危险", "上周已经有老人摔倒了",
    "菜市场门口每天早上乱停车", "城管来了就走走了又停", "希望安排人长期值守",
    "小区二期的消防通道被杂物堵死", "物业说不归他们管", "万一着火消防车根本进不来",
    "派出所户籍窗口中午不开门", "上班族只能请假去办", "能不能错开午休时间",
    "学校旁边新开了一家网吧", "经常看到穿校服的学生进出", "老板说他们查过身份证",
    "河道里有人偷偷排放污水", "夜里气味特别大", "鱼都死了一片",
    "我母亲的低保申请交上去三个月了", "街道一直说在审核", "家里实在等不起",
    "公交站台的顶棚被风刮坏", "下雨天大家只能淋着", "已经打过热线没有下文",
]
CAMPAIGN = "强烈要求尽快处理东风路与人民路交叉口红绿灯故障问题，每天上下学高峰险象环生"


def _letters(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 3 == 0:  # a campaign: the same words, or a clause added
            extra = rng.choice(CLAUSES) if i % 2 else ""
            out.append(("红绿灯", f"{CAMPAIGN}。{extra}编号{i}"))
        else:
            out.append(("反映", "，".join(rng.sample(CLAUSES, rng.randint(2, 5))) + "。"))
    return out


def _datasketch_values(keys: list[int], num_perm: int) -> np.ndarray:
    m = MinHash(num_perm=num_perm, scheme="affine64", hashfunc=int)
    if keys:
        m.update_batch(keys)
    return m.hashvalues


@pytest.mark.parametrize("num_perm", [16, DEFAULT_NUM_PERM, 256])
def test_minhash_values_are_datasketchs(num_perm: int) -> None:
    rng = np.random.default_rng(num_perm)
    for size in (0, 1, 7, 300, 2500):  # 2,500: more keys than one step of minhash() takes
        keys = np.unique(rng.integers(0, np.iinfo(np.uint64).max, size, dtype=np.uint64,
                                      endpoint=True))
        assert np.array_equal(minhash(keys, num_perm),
                              _datasketch_values(keys.tolist(), num_perm))


def test_band_layout_is_datasketchs() -> None:
    for num_perm in (32, DEFAULT_NUM_PERM, 256):
        for threshold in (0.03, DEFAULT_THRESHOLD, 0.15, 0.3, 0.5, 0.7, 0.9):
            lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.2, 0.8))
            assert band_layout(threshold, num_perm) == (lsh.b, lsh.r), (num_perm, threshold)


class Oracle:
    """The indexed letters as sets, their bands from datasketch, checked one by one."""

    def __init__(self, index: RepeatIndex) -> None:
        lsh = MinHashLSH(threshold=index.threshold, num_perm=index.num_perm, weights=(0.2, 0.8))
        self.ranges = lsh.hashranges
        self.index = index
        self.cases: dict[int, tuple[frozenset[int], np.ndarray, datetime]] = {}

    def entry(self, subject: str, text: str) -> tuple[frozenset[int], np.ndarray]:
        keys = self.index.shingler.shingles(subject, text).tolist()
        return frozenset(keys), _datasketch_values(keys, self.index.num_perm)

    def query(self, subject: str, text: str, exclude: int | None) -> list[tuple[int, float, float]]:
        mine, values = self.entry(subject, text)
        if not mine:
            return []
        banded = sorted((c for c, (_, theirs, _) in self.cases.items()
                         if any(np.array_equal(values[a:b], theirs[a:b])
                                for a, b in self.ranges)), reverse=True)
        found = []
        for case_id in banded[:MAX_EXAMINED]:  # the newest examined; the letter itself skipped
            if case_id == exclude:
                continue
            shingles, theirs, _ = self.cases[case_id]
            exact = len(mine & shingles) / len(mine | shingles)
            if exact >= self.index.threshold:
                found.append((case_id, float(np.mean(values == theirs)), exact))
        return sorted(found, key=lambda m: (-m[2], m[0]))


def test_queries_equal_an_exact_check_of_the_same_letters_through_changes() -> None:
    """Inserted out of order, some replaced under their id, some taken out, the oldest pruned:
    every query returns the cases (and scores) an exact check over the letters indexed at that
    moment returns. A campaign of 200+ alike letters makes the newest-first cut matter."""
    index = RepeatIndex(report_text=load_report_text())
    oracle = Oracle(index)
    letters = _letters(720, seed=7)
    start = datetime(2026, 3, 1, 8, 0)
    ids = list(range(1, 601))
    random.Random(3).shuffle(ids)

    def put(case_id: int, letter: tuple[str, str]) -> None:
        at = start + timedelta(minutes=case_id)
        index.insert(case_id, index.sign(*letter), at)
        shingles, values = oracle.entry(*letter)
        oracle.cases.pop(case_id, None)
        if shingles:
            oracle.cases[case_id] = (shingles, values, at)

    def check(queries: list[tuple[str, str]], exclude: int | None = None) -> None:
        for letter in queries:
            got = [tuple(m) for m in index.query(index.sign(*letter), exclude=exclude)]
            assert got == oracle.query(*letter, exclude), letter
        assert len(index) == len(oracle.cases)

    for case_id in ids:
        put(case_id, letters[case_id - 1])
    queries = letters[600:]
    check(queries)
    check(queries[:10], exclude=ids[0])
    for case_id in ids[::7]:  # closed or merged
        index.remove(case_id)
        oracle.cases.pop(case_id)
    for case_id in ids[:40]:  # reopened with a new text under the old id, or the same one
        put(case_id, letters[600 + case_id % 120] if case_id % 2 else letters[case_id - 1])
    check(queries)
    cut = start + timedelta(minutes=250)
    assert index.prune(cut) == sum(1 for _, _, at in oracle.cases.values() if at < cut)
    oracle.cases = {c: v for c, v in oracle.cases.items() if v[2] >= cut}
    check(queries)
    for case_id in list(oracle.cases):
        index.remove(case_id)
    assert len(index) == 0 and index.query(index.sign(*queries[0])) == []
    assert not index._distinct and not any(index._bands._buckets)  # nothing left behind


def test_the_index_loads_neither_scipy_nor_a_word_segmenter() -> None:
    """The service holds the index: building, signing and querying it must not import
    datasketch (which loads scipy) or rjieba (whose module and dictionary cost 57 MB)."""
    code = ("import sys\n"
            "from handlers.repeats import RepeatIndex, load_report_text\n"
            "i = RepeatIndex(report_text=load_report_text())\n"
            "s = i.sign('路灯', '我们小区的路灯坏了三个月，晚上很黑')\n"
            "i.insert(1, s); assert [m.case_id for m in i.query(s)] == [1]\n"
            "print(sorted(m for m in ('datasketch', 'scipy', 'rjieba', 'jieba')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                         timeout=120, cwd=ROOT).stdout.decode().strip()
    assert out == "[]"


def test_a_classifiers_tokenizer_is_its_own_dictionary_only() -> None:
    """A Normaliser builds its private tokenizer without importing the rjieba package, whose
    ``__init__`` builds a default tokenizer (24 MB) nothing uses; the words come out the same
    as the package's own tokenizer cuts them."""
    code = ("import sys\n"
            "from handlers.classify.text import Normaliser\n"
            "n = Normaliser(('社区矫正',))\n"
            "print(n.tokens('社区矫正人员管理不到位，派出所民警办事拖拉'))\n"
            "print('rjieba' in sys.modules)\n"
            "import rjieba\n"
            "j = rjieba.Jieba(); j.add_word('社区矫正', 20000, None)\n"
            "print(' '.join(j.cut('社区矫正人员管理不到位 派出所民警办事拖拉', False)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                         timeout=120, cwd=ROOT).stdout.decode().splitlines()
    assert out[1] == "False"
    assert out[0] == out[2] and "社区矫正" in out[0].split()
