"""`evalkit view`, driven in Debian's chromium (Selenium with the system chromedriver; no browser
build is downloaded): the served page and the self-contained file, checked against the logs.

The viewer runs as a real process (`python -m evalkit view --no-browser`, URL read from its stdout);
the logs come from real runs against the test server, or are generated (100,000 samples, a hostile
log). One browser serves the whole module. Screenshots of each view go to a folder printed at the
start ($EVALKIT_VIEW_SHOTS, else under pytest's tmp dir).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from test_exams import PNG_1X1
from test_graders import INVALID, PROMPTS, refusal_key
from test_report import two_models
from view_logs import counts, kind_of, read_samples, sample, write_large

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("EVALKIT_VIEW_SHOTS") or tmp_path_factory.mktemp("view-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nevalkit view screenshots: {folder}", file=sys.stderr)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM and DRIVER, "chromium and chromedriver are needed (scripts/setup installs chromium-driver)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1000", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture
def serve(tmp_path):
    """serve(*logs) -> the URL of a real `evalkit view --no-browser` process (stopped after the test)."""
    procs = []

    def start(*logs: str) -> str:
        proc = subprocess.Popen([sys.executable, "-m", "evalkit", "view", *logs, "--no-browser"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("evalkit view: serving "), (line, proc.stderr.read() if proc.poll() is not None else "")
        return line.split(" at ")[1].split()[0]

    yield start
    for p in procs:
        p.kill()
        p.wait()


def until(driver, check, timeout: float = 20):
    return WebDriverWait(driver, timeout).until(lambda d: check(d))


def load(driver, url: str) -> None:
    driver.get(url)
    until(driver, lambda d: d.execute_script("return document.body.dataset.ready === '1'"))


def text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def filter_counts(driver) -> dict[str, int]:
    return {b.get_attribute("data-filter"): int(b.find_element(By.CSS_SELECTOR, ".count").text.replace(",", ""))
            for b in driver.find_elements(By.CSS_SELECTOR, "#filters button")}


def row_ids(driver, table: str = "#samples") -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll(arguments[0])].map(td => td.textContent)",
                                 f"{table} tbody td.id")


def click_filter(driver, name: str, expect_total: int) -> None:
    # by script: the buttons are drawn again by each answer, so a found element may be gone at the click
    driver.execute_script("document.querySelector(arguments[0]).click()", f"#filters button[data-filter='{name}']")
    until(driver, lambda d: f" {expect_total:,} sample(s)" in text(d, "#page-info")
          and "active" in d.find_element(By.CSS_SELECTOR, f"#filters button[data-filter='{name}']").get_attribute("class"))


def no_script_errors(driver) -> None:
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def view_counts(records: list[dict]) -> dict[str, int]:
    """What each filter must count, from the log's lines."""
    scored = [r for r in records if not r.get("error") and isinstance(r.get("score"), (int, float))]
    return {"all": len(records), "correct": sum(r["score"] >= 1 for r in scored),
            "wrong": sum(r["score"] < 1 for r in scored), "error": sum(bool(r.get("error")) for r in records),
            "unparsed": sum(r.get("parsed") is False for r in records),
            "truncated": sum(bool(r.get("truncated")) for r in records),
            "invalid": sum((r.get("grader") or {}).get("valid") is False for r in records)}


def test_graded_run_filter_search_open(evalkit, start_server, tmp_path, serve, browser, shots):
    server = start_server(refusal_key(), default_reply="???")
    res = evalkit("run", "refusals", "--model", "openai/cand", "--grader-model", "openai/judge", "--base-url",
                  server.url, "--log-prompts", "--json", "--quiet", "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 1, res.stderr     # 3 invalid grades of 24: more than --fail-on-error 0
    log = json.loads(res.stdout)["log"]
    records = read_samples(Path(log))
    load(browser, serve(log))
    assert filter_counts(browser) == view_counts(records)
    assert filter_counts(browser)["invalid"] == 3
    click_filter(browser, "invalid", 3)
    assert row_ids(browser) == [r["id"] for r in records if r["id"] in INVALID]
    browser.save_screenshot(str(shots / "1-list-invalid-grades.png"))
    click_filter(browser, "all", 24)
    first = PROMPTS[0]
    box = browser.find_element(By.ID, "search")
    box.send_keys(first["prompt"][5:45], Keys.ENTER)                    # a piece of one prompt only
    until(browser, lambda d: row_ids(d) == [first["id"]])
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER)     # enter opens the selected sample
    until(browser, lambda d: d.find_element(By.ID, "sample-view").is_displayed())
    rec = next(r for r in records if r["id"] == first["id"])
    assert text(browser, ".sample-id") == first["id"]
    assert browser.find_element(By.CSS_SELECTOR, "pre.reply").get_attribute("textContent") == rec["completion"]
    assert browser.find_element(By.CSS_SELECTOR, "pre.grader-reply").get_attribute("textContent") == rec["grader"]["reply"]
    assert text(browser, "td[data-key='choice']") == rec["grader"]["choice"]
    assert text(browser, "td[data-key='score']") == f"{rec['score']:g}"
    contents = [e.get_attribute("textContent") for e in browser.find_elements(By.CSS_SELECTOR, ".messages pre.content")]
    assert contents == [m["content"] for m in rec["messages"]]
    browser.save_screenshot(str(shots / "2-sample-graded.png"))
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ESCAPE)
    until(browser, lambda d: d.find_element(By.ID, "list-view").is_displayed())
    body.send_keys("/")
    until(browser, lambda d: d.execute_script("return document.activeElement.id") == "search")
    no_script_errors(browser)


def test_hundred_thousand_samples_page_by_page(evalkit, tmp_path, serve, browser, shots):
    big = write_large(tmp_path / "big.jsonl", 100_000)
    load(browser, serve(str(big)))
    want = counts(100_000)
    assert filter_counts(browser) == want
    assert text(browser, "#page-info") == "page 1 of 1000 · 100,000 sample(s) · 1-100"
    assert row_ids(browser) == [f"item-{i:06d}" for i in range(100)]
    browser.find_element(By.ID, "last").click()
    until(browser, lambda d: text(d, "#page-info").startswith("page 1000 of 1000"))
    assert row_ids(browser) == [f"item-{i:06d}" for i in range(99_900, 100_000)]
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("k")                                    # k on a page's first row goes to the page before
    until(browser, lambda d: text(d, "#page-info").startswith("page 999 of 1000"))
    assert browser.find_element(By.CSS_SELECTOR, "#samples tr.selected td.id").text == "item-099899"
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(shots / "3-list-100k-paged.png"))
    click_filter(browser, "error", want["error"])
    errors = [i for i in range(100_000) if i % 7 == 3]
    assert row_ids(browser) == [f"item-{i:06d}" for i in errors[:100]]
    body.send_keys("j", "j", Keys.ENTER)                   # the third error
    until(browser, lambda d: d.find_element(By.ID, "sample-view").is_displayed())
    assert text(browser, ".sample-id") == f"item-{errors[2]:06d}"
    assert browser.find_element(By.CSS_SELECTOR, "pre.error-text").get_attribute("textContent") == sample(errors[2]).error
    browser.save_screenshot(str(shots / "4-sample-error.png"))
    body.send_keys(Keys.ESCAPE)
    Select(browser.find_element(By.ID, "sort")).select_by_value("time")
    browser.find_element(By.ID, "desc").click()
    # the slowest errors first (0.22 s: i % 13 == 12), in log order among equals: item 38 is the first such error
    until(browser, lambda d: row_ids(d)[:2] == ["item-000038", "item-000129"])
    Select(browser.find_element(By.ID, "sort")).select_by_value("line")
    browser.find_element(By.ID, "desc").click()
    click_filter(browser, "truncated", want["truncated"])
    cut = [i for i in range(100_000) if kind_of(i) == "truncated"]
    until(browser, lambda d: row_ids(d) == [f"item-{i:06d}" for i in cut[:100]])
    body.send_keys(Keys.ENTER)
    until(browser, lambda d: d.find_element(By.ID, "sample-view").is_displayed())
    assert text(browser, "td[data-key='truncated']") == sample(cut[0]).truncated
    # the self-contained file refuses a log this big, in one line that points to the served viewer
    res = evalkit("view", str(big), "--out", str(tmp_path / "big.html"))
    assert res.returncode == 2 and not (tmp_path / "big.html").exists()
    lines = big.stat().st_size - len(big.read_bytes().split(b"\n", 1)[0]) - 1      # the sample lines' bytes
    assert res.stderr.splitlines() == [
        "evalkit: error: --out embeds at most 10,000 samples and 64 MiB of sample lines; these logs have 100,000 "
        f"samples ({lines / 2**20:.1f} MiB, the largest {big}): browse them with `evalkit view LOG ...` (served, "
        "paged from the log)"]
    no_script_errors(browser)


def fmt(x: float) -> str:
    """A number as the page prints it (EV.num): integers bare, else 4 decimals."""
    return str(int(x)) if float(x).is_integer() else f"{x:.4f}"


def check_compare(driver, expected: dict, records: tuple[list[dict], list[dict]], shots: Path) -> None:
    driver.find_element(By.CSS_SELECTOR, "#tabs button[data-tab='pairs']").click()
    until(driver, lambda d: d.find_element(By.ID, "pairs-view").is_displayed())
    o = expected["overall"]
    assert text(driver, "#compare-summary .diff") == (
        f"accuracy: {fmt(o['base'])} → {fmt(o['new'])}, difference {'+' if o['diff'] >= 0 else ''}{fmt(o['diff'])} "
        f"(95% CI {fmt(o['ci95'][0])} to {fmt(o['ci95'][1])}, p={fmt(o['p_value'])}, {o['test']}) over "
        f"{expected['paired']} paired samples")
    driver.find_element(By.CSS_SELECTOR, "#pair-filters button[data-kind='worse']").click()
    in_log_order = {k: [r["id"] for r in records[0] if r["id"] in expected["flipped"][k]] for k in ("worse", "better")}
    assert sorted(in_log_order["worse"]) == expected["flipped"]["worse"]        # every flip is in the base log
    until(driver, lambda d: row_ids(d, "#pairs") == in_log_order["worse"])
    driver.find_element(By.CSS_SELECTOR, "#pair-filters button[data-kind='better']").click()
    until(driver, lambda d: row_ids(d, "#pairs") == in_log_order["better"])
    driver.save_screenshot(str(shots / "5-compare-flipped-to-right.png"))
    sid = expected["flipped"]["better"][0]
    driver.find_element(By.CSS_SELECTOR, f"#pairs tbody tr[data-id='{sid}']").click()
    until(driver, lambda d: d.find_element(By.ID, "sample-view").is_displayed())
    replies = [e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, ".side pre.reply")]
    assert replies == [next(r["completion"] for r in recs if r["id"] == sid) for recs in records]
    driver.save_screenshot(str(shots / "6-compare-pair.png"))


def test_two_runs_side_by_side_served_and_as_one_file(evalkit, start_server, tmp_path, serve, browser, shots):
    logs = two_models(evalkit, start_server, tmp_path)
    res = evalkit("compare", *logs, "--json")
    expected = json.loads(res.stdout)
    assert expected["flipped"]["worse"] and expected["flipped"]["better"]
    records = (read_samples(Path(logs[0])), read_samples(Path(logs[1])))
    load(browser, serve(*logs))
    check_compare(browser, expected, records, shots)
    no_script_errors(browser)
    page = tmp_path / "view.html"
    res = evalkit("view", *logs, "--out", str(page))
    assert res.returncode == 0, res.stderr
    html = page.read_text()
    assert "<script src" not in html and "<link" not in html and "http-equiv='Content-Security-Policy'" in html
    load(browser, page.as_uri())
    assert filter_counts(browser) == view_counts(records[0])
    check_compare(browser, expected, records, shots)
    no_script_errors(browser)
    # the report names the viewer command for each eval's logs, and with --out links to its viewer page
    report = evalkit("report", *logs)
    assert f"Samples: `evalkit view {logs[0]} {logs[1]}`" in report.stdout
    res = evalkit("report", *logs, "--format", "html", "--out", str(tmp_path / "report.html"))
    assert res.returncode == 0, res.stderr
    assert (f"<p class='view'>Samples: <a href='report_files/view-quiz.html'>the sample browser</a> · "
            f"<code>evalkit view {logs[0]} {logs[1]}</code></p>") in (tmp_path / "report.html").read_text()
    browser.get((tmp_path / "report.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, "p.view a").click()
    until(browser, lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert browser.current_url == (tmp_path / "report_files" / "view-quiz.html").as_uri()
    check_compare(browser, expected, records, shots)


HOSTILE_ID = "<img src=x onerror=\"window.pwned='id'\">"


def hostile_log(path: Path) -> dict:
    """Markup and script in every field, a 10 MB reply, unreadable lines. Returns what the page must show."""
    from evalkit.results.runlog import dumps
    from view_logs import header

    evil = sample(1).to_record()
    evil.update(id=HOSTILE_ID, group="<svg onload=\"window.pwned='group'\">", target="<i>t</i>",
                extracted="failed: AssertionError <img src=x onerror=\"window.pwned='verdict'\">",
                completion="</pre><script>window.pwned='reply'</script><b>bold</b>",
                messages=[{"role": "user", "content": "</script><script>window.pwned='prompt'</script>"},
                          {"role": "user", "content": [{"type": "image", "media_type": "text/html",
                                                        "data": "PHNjcmlwdD4="}]}])
    huge = sample(2).to_record()
    huge.update(id="huge", completion="x" * 10_000_000 + "END")
    rich = sample(3).to_record()                  # a chat prompt with few-shot turns and an image, thinking logged
    rich.update(reasoning="First <b>think</b>, then answer.", messages=[
        {"role": "system", "content": "Answer with a letter."}, {"role": "user", "content": "Shot 1?"},
        {"role": "assistant", "content": "A"}, {"role": "user", "content": "Shot 2?"}, {"role": "assistant", "content": "B"},
        {"role": "user", "content": [{"type": "text", "text": "What is in the picture?"},
                                     {"type": "image", "media_type": "image/png", "data": base64.b64encode(PNG_1X1).decode()}]}])
    types = {"type": "sample", "id": "types", "group": 5, "score": "1", "extras": [1], "grader": "x", "usage": "u",
             "messages": "m", "completion": 7, "model_s": "slow", "attempts": "many", "cost_usd": "free"}
    lines = [dumps(header(scoring="code")), dumps(evil), dumps(huge), b'{"type":"sample","id":"bad-\xff-utf8"}\n',
             b"<html><script>window.pwned='line'</script>\n", dumps(rich), dumps(types),
             b'{"type":"sample","id":"cut sh']
    path.write_bytes(b"".join(lines))
    return {"evil": evil, "huge": huge, "rich": rich}


def check_hostile(driver, expect: dict, shots: Path, name: str) -> None:
    problems = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#problems .bad-lines li")]
    assert problems == ["line 4: invalid UTF-8 at byte 27 of the line",
                        "line 5: not a run-log line (corrupt or not an evalkit log)",
                        "line 8: truncated last line (no newline at the end: the run was cut short)"]
    assert row_ids(driver) == [HOSTILE_ID, "huge", "item-000003", "types"]
    assert driver.find_element(By.CSS_SELECTOR, "#samples tbody td.group").text == expect["evil"]["group"]
    driver.find_element(By.CSS_SELECTOR, "#samples tbody tr").click()
    until(driver, lambda d: d.find_element(By.ID, "sample-view").is_displayed())
    assert text(driver, ".sample-id") == HOSTILE_ID
    assert driver.find_element(By.CSS_SELECTOR, "pre.reply").get_attribute("textContent") == expect["evil"]["completion"]
    assert text(driver, "td[data-key='sandbox verdict']") == expect["evil"]["extracted"]     # a code eval's verdict
    assert driver.find_elements(By.CSS_SELECTOR, "#sample-view img, #sample-view b, #sample-view i, svg") == []
    assert driver.execute_script("return window.pwned") is None
    driver.save_screenshot(str(shots / f"7-hostile-{name}.png"))
    driver.find_element(By.ID, "back").click()
    driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr")[1].click()
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".sample[data-id='huge'] .bigtext"))
    assert text(driver, ".bigtext") == "10,000,003 characters; the first 100,000 are shown."
    assert len(driver.find_element(By.CSS_SELECTOR, "pre.reply").get_attribute("textContent")) == 100_000
    assert driver.execute_script("return window.pwned") is None
    driver.find_element(By.ID, "back").click()
    driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr")[2].click()
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".sample[data-id='item-000003']"))
    assert text(driver, "details.fewshot summary") == "4 few-shot turn(s)"
    assert not driver.find_element(By.CSS_SELECTOR, "details.fewshot pre").is_displayed()      # collapsed
    driver.find_element(By.CSS_SELECTOR, "details.fewshot summary").click()
    shown = [p.get_attribute("textContent") for p in driver.find_elements(By.CSS_SELECTOR, ".messages pre.content")]
    assert shown == ["Answer with a letter.", "Shot 1?", "A", "Shot 2?", "B", "What is in the picture?"]
    assert driver.execute_script("return [...document.querySelectorAll('.messages img')].map(i => i.naturalWidth)") == [1]
    assert driver.find_element(By.CSS_SELECTOR, "pre.thinking").get_attribute("textContent") == expect["rich"]["reasoning"]
    driver.save_screenshot(str(shots / f"7-chat-sample-{name}.png"))
    driver.find_element(By.ID, "back").click()
    driver.find_elements(By.CSS_SELECTOR, "#samples tbody tr")[3].click()       # every field of a wrong type
    until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".sample[data-id='types']"))
    assert driver.find_element(By.CSS_SELECTOR, "pre.reply").get_attribute("textContent") == "7"
    assert text(driver, "td[data-key='attempts']") == "many" and text(driver, "td[data-key='flags']") == ""
    scripts = driver.execute_script("return [...document.scripts].map(s => s.src ? 'src' : s.type || 'inline')")
    assert scripts == (["src"] * 7 if name == "served" else ["application/json", "inline"])


def test_hostile_log_renders_as_text(evalkit, tmp_path, serve, browser, shots):
    log = tmp_path / "hostile.jsonl"
    expect = hostile_log(log)
    load(browser, serve(str(log)))
    check_hostile(browser, expect, shots, "served")
    page = tmp_path / "hostile.html"
    res = evalkit("view", str(log), "--out", str(page))
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines()[:3] == [
        f"evalkit: warning: {log}:4: invalid UTF-8 at byte 27 of the line (the page lists such lines)",
        f"evalkit: warning: {log}:5: not a run-log line (corrupt or not an evalkit log) (the page lists such lines)",
        f"evalkit: warning: {log}:8: truncated last line (no newline at the end: the run was cut short) "
        "(the page lists such lines)"]
    assert "<script>window.pwned" not in page.read_text()
    load(browser, page.as_uri())
    check_hostile(browser, expect, shots, "file")
    no_script_errors(browser)


def test_exam_chain_links_to_its_items(evalkit, start_server, tmp_path, serve, browser, shots):
    server = start_server([], default_reply="The answer is therefore [A]", tail_after="Problem 4. ")
    res = evalkit("run", "lsat", "--model", "openai/m", "--base-url", server.url, "--json", "--quiet",
                  "--limit", "20", "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    path = json.loads(res.stdout)["log"]
    exam = json.loads(Path(path).read_text())
    load(browser, serve(path))
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-tab='exams']").click()
    until(browser, lambda d: d.find_element(By.ID, "exam-view").is_displayed())
    steps = [s.find_element(By.CSS_SELECTOR, ".value").text for s in browser.find_elements(By.CSS_SELECTOR, ".chain .step")]
    assert steps == [f"{len(exam['sections'])} section(s)",
                     f"{fmt(exam['composite'])} / {fmt(exam['composite_max'])}", fmt(exam["scaled"]),
                     exam["percentile"]["text"]]
    rows = browser.find_elements(By.CSS_SELECTOR, "table.sections tbody tr")
    assert [r.get_attribute("data-section") for r in rows] == [s["name"] for s in exam["sections"]]
    for row, sec in zip(rows, exam["sections"]):
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[1:7] == [fmt(sec[k]) for k in ("n", "correct", "wrong", "blank", "errors", "accuracy")]
    links = [[b.text for b in step.find_elements(By.CSS_SELECTOR, "button.items")]
             for step in browser.find_elements(By.CSS_SELECTOR, ".chain .step")]
    assert links == [[s["name"] for s in exam["sections"]]] * 4          # each step links to every section's items
    browser.save_screenshot(str(shots / "8-exam-chain.png"))
    last = exam["sections"][-1]
    rows[-1].find_element(By.CSS_SELECTOR, "button.items").click()
    records = read_samples(Path(last["log"]) if Path(last["log"]).is_absolute() else tmp_path / last["log"])
    until(browser, lambda d: d.find_element(By.ID, "list-view").is_displayed()
          and text(d, "#page-info").endswith(f"{len(records)} sample(s) · 1-{len(records)}"))
    assert row_ids(browser) == [r["id"] for r in records]
    no_script_errors(browser)


@pytest.mark.parametrize("name, content, message", [
    ("x.jsonl", None, "{p}: cannot read log (No such file or directory)"),
    ("x.jsonl", "", "{p}: not an evalkit run log (no header line)"),
    ("x.jsonl", '{"type":"sample","id":"a"}\n', "{p}: not an evalkit run log (no header line)"),
    ("x.jsonl", '<html>\n', "{p}: not an evalkit run log (no header line; line 1: not a run-log line (corrupt or "
                             "not an evalkit log))"),
    ("x.json", '{"type":"exam","sections":"all"}', '{p}: not an exam result (its "sections" is not a list of sections)'),
    ("x.json", '[1]', '{p}: not an exam result (no "type": "exam")'),
])
def test_unreadable_inputs_are_one_line(evalkit, tmp_path, name, content, message):
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    res = evalkit("view", str(p), "--no-browser")
    assert res.returncode == 2 and res.stderr.splitlines() == ["evalkit: error: " + message.format(p=p)]


def test_the_server_answers_only_its_own_address(tmp_path, serve):
    import urllib.error
    import urllib.request

    url = serve(str(write_large(tmp_path / "small.jsonl", 5)))
    with urllib.request.urlopen(url + "api/samples?run=0&filter=error") as resp:
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")
        assert [r["id"] for r in json.load(resp)["rows"]] == ["item-000003"]
    for path, status, error in [("api/samples?run=0&filter=nope", 400, "unknown filter 'nope'"),
                                ("api/sample?run=3&n=0", 400, "no run 3"), ("api/x", 404, "no such page /api/x")]:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + path)
        assert e.value.code == status and json.load(e.value) == {"error": error}
    rebound = urllib.request.Request(url + "api/meta", headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(rebound)
    assert e.value.code == 403


def test_a_log_of_garbage_lines_is_listed_not_loaded_whole(evalkit, tmp_path, serve):
    import urllib.request

    from evalkit.results.runlog import dumps
    from view_logs import header

    log = tmp_path / "garbage.jsonl"
    log.write_bytes(dumps(header()) + b"\x00\xfe garbage\n" * 1500 + dumps(sample(1).to_record()))
    with urllib.request.urlopen(serve(str(log)) + "api/meta") as resp:
        run = json.load(resp)["runs"][0]
    assert (run["samples"], run["bad_count"], len(run["bad_lines"])) == (1, 1500, 1000)
    assert run["bad_lines"][-1] == {"line": 1001, "reason": "invalid UTF-8 at byte 1 of the line"}
    res = evalkit("view", str(log), "--out", str(tmp_path / "g.html"))
    assert res.returncode == 0
    lines = res.stderr.splitlines()
    assert lines[:6] == [f"evalkit: warning: {log}:{n}: invalid UTF-8 at byte 1 of the line (the page lists such lines)"
                         for n in range(2, 7)] + [f"evalkit: warning: {log}: 1495 more line(s) not read"]
    assert len(lines) == 7 and lines[6].startswith(f"evalkit view: wrote {tmp_path / 'g.html'} (")
    assert lines[6].endswith(" MiB, 1 samples)")
