"""How fast the JupyterLab graph viewer paints and moves large graphs, in a real Chromium.

    python benchmarks/extension_perf.py [--nodes 1000 10000] [--chromium /usr/bin/chromium]

For each size, a synthetic model (elementwise ops in four lanes with skip connections, see
tests/extension_models.py) is opened from JupyterLab's file browser. Reported per size:

- open to paint: from the double-click to the first painted frame, which includes the server
  reading the model and describing it, the transfer, the layout and the drawing (a small model
  opened first takes the server's one-off import of onnx out of the figure);
- viewer paint: from the description's arrival in the viewer to its first painted frame
  (flattening, layout in a worker, first draw);
- frame times while zooming and panning, both with the whole graph in view (every node drawn)
  and at a readable zoom: the time of each draw call, and the interval between frames.

Needs Playwright (pip install -e '.[ui]'), the built extension and Chromium.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import extension_models
from jupyter_process import running

MOVES = 60

_MOVE_SCRIPT = """
async ([kind, count]) => {
  const view = [...document.querySelectorAll('.wb-graph-document .wb-graph')].pop();
  const canvas = view.querySelector('.wb-graph-canvas');
  const box = canvas.getBoundingClientRect();
  const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
  const draws = [], intervals = [];
  let last = performance.now();
  for (let i = 0; i < count; i++) {
    const x = box.left + box.width / 2, y = box.top + box.height / 2;
    if (kind === 'zoom') {
      canvas.dispatchEvent(new WheelEvent('wheel', {
        deltaY: i % 2 ? 40 : -40, clientX: x, clientY: y, bubbles: true, cancelable: true }));
    } else {
      const step = i % 2 ? 25 : -25;
      const at = (dx, dy) => ({ clientX: x + dx, clientY: y + dy, pointerId: 1 });
      canvas.dispatchEvent(new PointerEvent('pointerdown', at(0, 0)));
      canvas.dispatchEvent(new PointerEvent('pointermove', at(step, step)));
      canvas.dispatchEvent(new PointerEvent('pointerup', at(step, step)));
    }
    await frame();
    const now = performance.now();
    intervals.push(now - last);
    last = now;
    draws.push(Number(view.dataset.frameMs));
  }
  return { draws, intervals };
}
"""


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"


def _open(page, name: str) -> tuple[float, float]:
    started = time.perf_counter()
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.wb-graph-document .wb-graph')]"
        ".some(el => el.dataset.state === 'ready')",
        timeout=120_000,
    )
    total = (time.perf_counter() - started) * 1000
    viewer = page.evaluate(
        "() => Number([...document.querySelectorAll('.wb-graph-document .wb-graph')]"
        ".pop().dataset.firstPaintMs)"
    )
    return total, viewer


def _measure(page, name: str) -> None:
    total, viewer = _open(page, name)
    print(f"  open to paint {total:.0f} ms; viewer paint {viewer:.0f} ms")
    for place in ("whole graph", "readable zoom"):
        if place == "whole graph":
            page.locator(".wb-graph-document .wb-graph-button", has_text="Fit").last.click()
        else:
            page.locator(".wb-graph-document .wb-graph-search").last.fill("node0")
            page.locator(".wb-graph-document .wb-graph-search").last.press("Enter")
        for kind in ("zoom", "pan"):
            result = page.evaluate(_MOVE_SCRIPT, [kind, MOVES])
            print(
                f"  {kind:4} at {place}: draw {_summary(result['draws'])}; "
                f"frame interval {_summary(result['intervals'])}"
            )
    page.keyboard.press("Alt+w")  # close the tab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="wb-perf-"))
    extension_models.marked_mlp(root / "warmup.onnx")
    for count in args.nodes:
        extension_models.synthetic(root / f"synthetic_{count}.onnx", count)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}")
    with (
        running("jupyterlab", root, root / "lab.log") as lab,
        sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.wait_for_selector(".jp-DirListing-item", timeout=90_000)
        print(f"chromium {browser.version}, viewport 1400x900")
        # The server's first description imports onnx; that one-off cost is shown apart.
        total, _ = _open(page, "warmup.onnx")
        print(f"first model opened after start (onnx imported by the server): {total:.0f} ms")
        page.keyboard.press("Alt+w")
        for count in args.nodes:
            print(f"{count:,} nodes:")
            _measure(page, f"synthetic_{count}.onnx")
        browser.close()


if __name__ == "__main__":
    main()
