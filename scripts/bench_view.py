#!/usr/bin/env python3
"""`evalkit view` on a large log: how long the server takes to index it, how long the page takes
to open in Debian's chromium, and what the browser and the server hold in memory.

    python scripts/bench_view.py [--samples 100000] [--keep DIR]

It writes a log of `--samples` generated samples (tests/view_logs.py: the real log serialisation),
starts `python -m evalkit view LOG --no-browser` as a user would, and drives chromium (Selenium,
the system chromedriver) through it: open, last page, a filter, a free-text search, one sample.
Figures are wall-clock on this machine, printed as one table row per step; the page's JS heap comes
from the DevTools protocol (Performance.getMetrics), the server's memory from /proc (VmHWM).
Not a test: the numbers depend on the machine; docs/view.md records them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from view_logs import write_large  # noqa: E402


def browser(profile: Path) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1000",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def timed(driver, action, done) -> float:
    start = time.perf_counter()
    action()
    WebDriverWait(driver, 120, poll_frequency=0.01).until(lambda d: done(d))
    return time.perf_counter() - start


def page_info(driver) -> str:
    return driver.find_element(By.ID, "page-info").text


def heap_mb(driver) -> float:
    metrics = {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    return metrics["JSHeapUsedSize"] / 2**20


def server_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(n: int, folder: Path) -> None:
    log = write_large(folder / "big.jsonl", n)
    print(f"log: {log} ({log.stat().st_size / 2**20:.1f} MiB, {n:,} samples)")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "evalkit", "view", str(log), "--no-browser"],
                            stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    url = proc.stdout.readline().split(" at ")[1].split()[0]
    rows = [("server: index the log, print the URL", time.perf_counter() - start, "")]
    driver = browser(folder / "profile")
    try:
        driver.execute_cdp_cmd("Performance.enable", {})
        rows.append(("page: open until the first 100 rows show",
                     timed(driver, lambda: driver.get(url),
                           lambda d: d.execute_script("return document.body.dataset.ready === '1'")), ""))
        rows.append(("page: last page", timed(driver, lambda: driver.find_element(By.ID, "last").click(),
                                              lambda d: page_info(d).startswith(f"page {-(-n // 100)} of")), ""))
        rows.append(("page: filter 'error'", timed(
            driver, lambda: driver.find_element(By.CSS_SELECTOR, "#filters button[data-filter='error']").click(),
            lambda d: "active" in d.find_element(By.CSS_SELECTOR, "#filters button[data-filter='error']")
            .get_attribute("class") and page_info(d).startswith("page 1 of")), ""))
        box = driver.find_element(By.ID, "search")
        rows.append(("page: search 'item 4322?' (reads every line)", timed(
            driver, lambda: box.send_keys("item 4322?\n"), lambda d: " 1 sample(s)" in page_info(d)), ""))
        rows.append(("page: open that sample", timed(
            driver, lambda: driver.find_element(By.CSS_SELECTOR, "#samples tbody tr").click(),
            lambda d: d.find_element(By.ID, "sample-view").is_displayed()), ""))
        rows.append(("browser: JS heap used", None, f"{heap_mb(driver):.1f} MB"))
        rows.append(("server: peak resident memory", None, f"{server_peak_mb(proc.pid):.0f} MB"))
    finally:
        driver.quit()
        proc.kill()
        proc.wait()
    rows += embedded(folder, min(n, 10_000))
    print(f"| step ({n:,} samples) | seconds | memory |\n|---|---|---|")
    for name, secs, mem in rows:
        print(f"| {name} | {'' if secs is None else f'{secs:.2f}'} | {mem} |")


def embedded(folder: Path, n: int) -> list[tuple]:
    """The self-contained file at its limit: how long writing it and opening it take."""
    log, page = write_large(folder / "limit.jsonl", n), folder / "limit.html"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "evalkit", "view", str(log), "--out", str(page)], check=True,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True)
    rows = [(f"--out: write {n:,} samples ({page.stat().st_size / 2**20:.1f} MiB)", time.perf_counter() - start, "")]
    driver = browser(folder / "profile2")
    try:
        driver.execute_cdp_cmd("Performance.enable", {})
        rows.append(("--out: open the file until the first 100 rows show", timed(
            driver, lambda: driver.get(page.as_uri()),
            lambda d: d.execute_script("return document.body.dataset.ready === '1'")), ""))
        rows.append(("--out: JS heap used", None, f"{heap_mb(driver):.1f} MB"))
    finally:
        driver.quit()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--keep", type=Path, help="write the log and browser profile here (default: a temporary folder)")
    args = p.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.samples, args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(args.samples, Path(tmp))


if __name__ == "__main__":
    main()
