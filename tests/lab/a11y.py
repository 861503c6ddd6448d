"""Accessibility by someone else's rules, for every page the browser tests open.

`axe(page, name)` runs axe-core (as axe-playwright-python bundles it: no download, no
CDN) in the page as it is, keeps its findings in artifacts/console/NAME.axe.json,
prints the counts by impact and fails on any serious or critical violation.
`tab_through(page, name)` presses Tab from the top of the page until it has reached
every button, link and field a person can use (shown and enabled), and fails naming
the ones it never reached.  tests/lab/test_console.py's `keep` runs both on each page
before its screenshot, so a page added later is checked as soon as a test keeps it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.helpers import require

if TYPE_CHECKING:
    from playwright.async_api import Page

IMPACTS = ("critical", "serious", "moderate", "minor")
FAILING = ("critical", "serious")
checked: dict[str, dict[str, int]] = {}     # page name -> violations by impact, this run


async def axe(page: Page, name: str, artifacts: Path) -> dict[str, int]:
    """axe-core's violations on `page` by impact (rules broken, each counted once)."""
    try:
        from axe_playwright_python.async_playwright import Axe
    except ImportError:
        require(False, "axe-playwright-python is not installed (make setup)")
        raise
    results = await Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    counts = Counter(str(v["impact"]) for v in violations)
    by_impact = {impact: counts.get(impact, 0) for impact in IMPACTS}
    checked[name] = by_impact
    (artifacts / f"{name}.axe.json").write_text(json.dumps(
        {"page": name, "url": page.url, "axe": results.response["testEngine"]["version"],
         "violations_by_impact": by_impact,
         "violations": [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                         "nodes": [n["target"] for n in v["nodes"]]} for v in violations]},
        indent=1, ensure_ascii=False))
    print(f"axe {name}: " + ", ".join(f"{impact} {n}" for impact, n in by_impact.items())
          + "".join(f"\n    {v['impact']}: {v['id']} ×{len(v['nodes'])}" for v in violations))
    bad = [v for v in violations if v["impact"] in FAILING]
    assert bad == [], f"{name}: axe finds serious or critical violations:\n" + "\n".join(
        f"  {v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in bad)
    return by_impact


# Each control a person can use: shown and enabled.  A control taken out of the Tab order
# (tabindex -1) is still one Tab must reach, and so is a made-up one (role button...).
_MARK = """() => {
  const all = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"]), '
    + '[role=button], [role=link], [role=checkbox], [role=tab], [role=menuitem], [role=textbox]')];
  const usable = all.filter((e) => !e.disabled && e.getAttribute("aria-disabled") !== "true"
                                   && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden");
  usable.forEach((e, i) => { e.dataset.tabStop = String(i); });
  return usable.map((e) => `${e.getAttribute("role") || e.tagName.toLowerCase()} "${(e.getAttribute("aria-label")
    || e.labels?.[0]?.textContent || e.textContent || e.name || "").trim()}"`);
}"""
# Start from the top: focus a stand-in at the start of the body, then take it away
# (the browser goes on from where it was).
_TOP = """() => {
  document.activeElement?.blur();
  const start = document.createElement("span");
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus();
  start.remove();
}"""
_FOCUSED = "() => document.activeElement?.dataset?.tabStop ?? null"


async def tab_through(page: Page, name: str) -> list[str]:
    """Tab from the top of the page until every control was focused once; the controls
    in the order Tab reached them.  Focus is back at the top afterwards."""
    controls: list[str] = await page.evaluate(_MARK)
    await page.evaluate(_TOP)
    order: list[int] = []
    # A date field takes a Tab per part: allow a few presses per control.
    for _ in range(4 * len(controls) + 4):
        if len(order) == len(controls):
            break
        await page.keyboard.press("Tab")
        stop = await page.evaluate(_FOCUSED)
        if stop is not None and int(stop) not in order:
            order.append(int(stop))
    await page.evaluate(_TOP)
    missed = [c for i, c in enumerate(controls) if i not in order]
    assert missed == [], f"{name}: Tab never reaches {missed} (reached {[controls[i] for i in order]})"
    return [controls[i] for i in order]
