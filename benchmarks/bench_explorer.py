"""The explorer's redraw time, measured in the page, and the screenshots in docs/images.

    python benchmarks/bench_explorer.py RUN [--moves 300] [--screenshot docs/images/explorer-NAME.png]

Opens RUN/explorer.html (written first if missing) in headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright), moves the pointer along a path over the plane, and reports the page's own
timing of each redraw (decode + draw, performance.now() in explorer.js): median, 95th percentile, max.
With --screenshot: two test points of different labels clicked (their interpolation), a third hovered.
"""

import argparse
import math
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from vaelab.explorer import decoder as xd
from vaelab.explorer import page as explorer  # noqa: E402


def isolated(pg, count: int) -> list[int]:
    """Up to `count` scatter points of different labels with no other point within 12 px, spread over the plane."""
    p = pg.evaluate("explorer.payload")
    xy = xd.unb64(p["xy"], "<f4").reshape(-1, 2)
    x0, x1, y0, y1 = p["extent"]
    px = (xy - [x0, y0]) / [(x1 - x0), (y1 - y0)] * 600
    d = np.sqrt(((px[:, None] - px[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    labels = xd.unb64(p["labels"], "<i4") if p["labels"] else np.zeros(len(xy), int)
    far = [i for i in np.argsort(-np.abs(px - 300).sum(1)) if d[i].min() > 12]  # outer points first
    out, seen = [], set()
    for i in far:
        if labels[i] not in seen:
            out.append(int(i))
            seen.add(labels[i])
        if len(out) == count:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--screenshot")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    page_path = Path(args.run) / "explorer.html"
    if not page_path.exists():
        explorer.write_explorer(args.run)
    print(f"{page_path}: {page_path.stat().st_size / 1e6:.2f} MB")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.goto(page_path.resolve().as_uri())
        x0, x1, y0, y1 = pg.evaluate("explorer.payload.extent")
        pg.evaluate("explorer.state.times.length = 0")
        for k in range(args.moves):  # a Lissajous path over the plane
            t = 2 * math.pi * k / args.moves
            a = x0 + (x1 - x0) * (0.5 + 0.4 * math.sin(3 * t))
            b = y0 + (y1 - y0) * (0.5 + 0.4 * math.sin(2 * t))
            pg.mouse.move(*pg.evaluate(f"explorer.toClient({a}, {b})"))
        times = sorted(pg.evaluate("explorer.state.times"))
        print(f"{len(times)} redraws: median {statistics.median(times):.2f} ms, "
              f"95th percentile {times[int(0.95 * (len(times) - 1))]:.2f} ms, max {times[-1]:.2f} ms "
              f"({pg.evaluate('explorer.payload.decoder.mode')} decoder)")
        if args.screenshot:
            picks = isolated(pg, 3)
            for i in picks[:2]:
                pg.mouse.click(*pg.evaluate(f"explorer.pointClient({i})"))
            pg.mouse.move(*pg.evaluate(f"explorer.pointClient({picks[2]})"))
            pg.screenshot(path=args.screenshot, full_page=True)
            print(f"wrote {args.screenshot}")
        browser.close()


if __name__ == "__main__":
    main()
