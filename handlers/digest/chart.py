"""The digest's trend chart: submissions per category over the last 12 weeks, as a PNG.

Drawn for a phone: 480 × 480 CSS pixels at twice that resolution, shown at the screen's width
(at 360 px every label is still about 11 px high), at most five lines (the caller's choice of the
largest categories) with the legend below the plot, one short name a line, week numbers on the
x axis.

matplotlib with the Agg backend and its object API (``Figure`` + ``FigureCanvasAgg``, never
pyplot), so the chart can be drawn in a worker thread of the running service. Labels are
Chinese, so a CJK font is looked up once ("Noto Sans CJK SC" from Debian's fonts-noto-cjk, then a
few other common CJK families); without one the chart is still drawn, with missing glyphs.
"""

from __future__ import annotations

import io
import logging
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING

import matplotlib
from matplotlib import colormaps, font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

log = logging.getLogger(__name__)
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei", "PingFang SC")


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed CJK font family, or None."""
    for family in CJK_FAMILIES:
        try:
            font_manager.findfont(font_manager.FontProperties(family=family),
                                  fallback_to_default=False)
        except ValueError:
            continue
        return family
    log.warning("no CJK font found; the digest chart's Chinese labels will not render")
    return None


WIDTH_IN, DPI = 4.8, 200  # 480 CSS px wide (100 per inch), drawn at 2x for sharp phone screens
FONT_PT = 11


def trend_png(weeks: list[str], series: dict[str, list[int]], labels: dict[str, str],
              title: str = "近12周来信最多的类别") -> bytes:
    """A line per category (``labels`` gives each its legend text), weeks on the x axis."""
    family = cjk_font()
    rc: dict[RcKeyType, object] = {
        "font.family": [family, "DejaVu Sans"] if family else ["DejaVu Sans"],
          "axes.unicode_minus": False, "font.size": FONT_PT}
    height = 3.0 + 0.28 * max(1, len(series))  # the plot, then one legend line per category
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    with warnings.catch_warnings():
        # Missing glyphs (no CJK font) warn; the chart is still worth sending.
        warnings.simplefilter("ignore", UserWarning)
        with matplotlib.rc_context(rc):
            _draw(fig, weeks, series, labels, title)
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw(fig: Figure, weeks: list[str], series: dict[str, list[int]], labels: dict[str, str],
          title: str) -> None:
    ax = fig.add_subplot()
    x = list(range(len(weeks)))
    colors = matplotlib_colors(len(series))
    for (cid, values), color in zip(series.items(), colors, strict=True):
        ax.plot(x, values, marker="o", markersize=3, linewidth=1.6, color=color,
                label=labels.get(cid, cid))
    ax.set_xticks(x, [w.split("-W")[-1] for w in weeks], fontsize=FONT_PT - 2)
    ax.set_xlabel("周次")
    ax.set_ylim(bottom=0)
    locator = ax.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # the default AutoLocator is one
        locator.set_params(integer=True)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
    ax.set_ylabel("件数")
    if series:
        fig.legend(loc="outside lower left", ncols=1, frameon=False, fontsize=FONT_PT)
    else:
        ax.text(0.5, 0.5, "暂无数据", transform=ax.transAxes, ha="center", va="center")


def matplotlib_colors(n: int) -> list[tuple[float, float, float, float]]:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
