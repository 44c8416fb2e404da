"""Screenshots of the report, the comparison page and the explorer on a laptop and a phone, for the README.

    python benchmarks/page_screenshots.py RUN/report.html COMPARISON/compare.html RUN/explorer.html [--out docs/images]

Writes OUT/{report,compare,explorer}-{laptop,phone}.png: the first screen of each page at 1280 x 900 and at
390 x 844 (headless Chromium, Debian's /usr/bin/chromium, driven by Playwright), and prints for each the page's
scroll width against the window's and the smallest font of any text, so a page that scrolls sideways or shrinks its
text shows in the numbers as well as in the picture. In the explorer, the pointer is put on a test point first.
"""

import argparse
import shutil
from pathlib import Path

SIZES = {"laptop": (1280, 900), "phone": (390, 844)}
SMALLEST_FONT = """() => { let small = Infinity;
  for (const e of document.body.querySelectorAll('*')) {
    if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    if (!e.getClientRects().length) continue;
    small = Math.min(small, parseFloat(getComputedStyle(e).fontSize)); }
  return small; }"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("compare")
    ap.add_argument("explorer")
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for kind, path in (("report", args.report), ("compare", args.compare), ("explorer", args.explorer)):
            for device, (w, h) in SIZES.items():
                pg = browser.new_page(viewport={"width": w, "height": h}, has_touch=device == "phone")
                pg.goto(Path(path).resolve().as_uri())
                if kind == "explorer":
                    a, b = pg.evaluate("[0, 1].map((k) => explorer.payload.extent[2 * k] * 0.3 "
                                       "+ explorer.payload.extent[2 * k + 1] * 0.7)")
                    pg.mouse.move(*pg.evaluate(f"explorer.toClient({a}, {b})"))
                scroll, inner = pg.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
                name = out / f"{kind}-{device}.png"
                pg.screenshot(path=str(name))
                print(f"{name}: scroll width {scroll} of {inner} px, smallest font {pg.evaluate(SMALLEST_FONT)} px")
                pg.close()
        browser.close()


if __name__ == "__main__":
    main()
