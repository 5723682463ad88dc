"""The upload page in a real browser (Debian's Chromium driven by Playwright) against the real
processes: `dagster dev` (its landing sensor scores what lands) and `affluent serve`, over the
same folders and instance. A good file is uploaded, scored, shown and its list downloaded; a bad
file shows its reason. Screenshots of each page go to docs/screenshots/."""

import contextlib
import csv
import io
import os

import pytest
from playwright.sync_api import expect, sync_playwright

from affluent_assets.lib.demo_data import generate_customers
from affluent_assets.lib.demo_files import write_extract
from affluent_assets.lib.landing import batch_key_for
from affluent_assets_tests.defs.conftest import register_tiny_model
from affluent_assets_tests.servers import REPO, AffluentServe, DagsterStores, stop
from affluent_assets_tests.web.test_api import api_env
from affluent_assets_tests.web.test_batch_states import (  # noqa: F401
    good_frame,
    landing_stores,
    model_store,
    score,
    served,
)

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO / "docs" / "screenshots"
ROWS = 1_200
SCORING_TIMEOUT_MS = 150_000


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module: Playwright's sync API runs one instance at a time."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} missing: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def browser_page(browser, url: str, root):
    """A tab on `url`; `tab.tmp` is a folder for the test's files."""
    tab = browser.new_page(viewport={"width": 1200, "height": 1000})
    try:
        tab.tmp = root
        tab.goto(url)
        yield tab
    finally:
        tab.close()


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    """dagster dev and affluent serve over the same temporary folders, and a browser page."""
    root = tmp_path_factory.mktemp("page")
    models = register_tiny_model(root / "mlflow")
    stores = DagsterStores(root, models.tracking_uri, models.artifact_root)
    dagster = stores.start(root / "dagster-dev.log")
    serve = AffluentServe(stores.env())
    try:
        serve.wait()
        with browser_page(browser, serve.url, root) as tab:
            yield tab
    finally:
        stop(serve.process)
        stop(dagster)


@pytest.fixture
def serve_only_page(browser, tmp_path):
    """affluent serve alone (no dagster dev: nothing reads what lands) and a browser page."""
    env = {**api_env(tmp_path), "AFFLUENT_OUTCOMES": str(tmp_path / "outcomes"),
           "AFFLUENT_WAREHOUSE": str(tmp_path / "warehouse.duckdb")}  # fmt: skip
    serve = AffluentServe(env).wait()
    try:
        with browser_page(browser, serve.url, tmp_path) as tab:
            yield tab
    finally:
        stop(serve.process)


def test_a_good_file_comes_back_as_a_ranked_explained_list(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    expect(page.locator("#drop .drop-title")).to_contain_text("Drop an ETB file")
    page.screenshot(path=SCREENSHOTS / "upload-empty.png", full_page=True)
    good = write_extract(
        generate_customers(ROWS, seed=61).drop(columns="C_seg"), page.tmp / "branch list.csv"
    )
    page.set_input_files("#file-input", str(good))
    expect(page.locator("#progress-text")).to_have_text("uploaded", timeout=30_000)
    expect(page.locator("#status-badge")).to_have_text("scored", timeout=SCORING_TIMEOUT_MS)
    expect(page.locator("#fig-rows")).to_have_text(f"{ROWS:,}")
    rows = page.locator("#candidates tbody tr")
    expect(rows.first).to_be_visible()
    assert 0 < rows.count() <= 25
    first = rows.first.locator("td")
    assert first.nth(0).inner_text() == "1"
    assert first.nth(2).inner_text() in ("campaign", "control")
    assert first.nth(4).inner_text().endswith("%)")  # the list's own estimate and interval
    assert first.nth(5).inner_text().endswith("%")  # the holdout's
    assert " = " in first.nth(6).inner_text()  # reasons: `feature = value (+contribution)`
    expect(page.locator("#chart path")).to_have_count(3)  # holdout, estimate and its band
    expect(page.locator("#control-note")).to_contain_text("held back as a control group")
    expect(page.locator("#estimates tbody tr").first).to_contain_text("model threshold")
    page.screenshot(path=SCREENSHOTS / "upload-scored.png", full_page=True)

    with page.expect_download() as download:
        page.click("#download-csv")
    text = download.value.path().read_text()
    listed = list(csv.DictReader(io.StringIO(text)))
    candidates = int(page.locator("#fig-candidates").inner_text().replace(",", ""))
    assert len(listed) == candidates > 0
    assert [int(r["rank"]) for r in listed] == list(range(1, candidates + 1))
    assert all(r["reason_1"] and r["expected_precision"] for r in listed)
    control = [r for r in listed if r["group"] == "control"]
    assert len(control) == round(0.10 * candidates) and {r["group"] for r in listed} == {
        "campaign", "control",
    }  # fmt: skip
    # The batch is listed with its state and model version.
    expect(page.locator("#batches tbody tr").first).to_contain_text("scored")


def test_a_bad_file_shows_why_in_plain_words(page):
    frame = generate_customers(300, seed=62)
    frame["NUM_PRD"] = frame["NUM_PRD"].astype(object)
    frame.loc[[4, 9], "NUM_PRD"] = "lots"
    bad = page.tmp / "bad extract.csv"
    frame.to_csv(bad, index=False)
    page.set_input_files("#file-input", str(bad))
    expect(page.locator("#status-badge")).to_have_text("quarantined", timeout=SCORING_TIMEOUT_MS)
    reason = page.locator("#reason")
    expect(reason).to_contain_text("'NUM_PRD'")
    expect(reason).to_contain_text("data rows 5 ('lots'), 10 ('lots')")
    expect(page.locator("#status-text")).to_contain_text("does not meet the data contract")
    page.screenshot(path=SCREENSHOTS / "upload-quarantined.png", full_page=True)


def test_an_outcome_file_handed_in_on_the_page_is_listed_as_waiting(serve_only_page):
    page = serve_only_page
    expect(page.locator("#no-outcomes")).to_be_visible()
    expect(page.locator("#no-figures")).to_be_visible()
    called = page.tmp / "march campaign.csv"
    called.write_text("customer_key,model_version,batch_key,upgraded\n1-1,1,march.csv,yes\n")
    page.set_input_files("#outcome-input", str(called))
    expect(page.locator("#outcome-progress-text")).to_have_text("uploaded", timeout=30_000)
    row = page.locator("#outcomes tbody tr").first
    expect(row).to_contain_text("march_campaign")
    expect(row.locator(".badge")).to_have_text("waiting")
    expect(page.locator("#no-outcomes")).to_be_hidden()
    [landed] = [p.name for p in (page.tmp / "outcomes").glob("*.csv")]
    expect(row.locator("td").first).to_have_text(landed)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#outcomes-card").screenshot(path=SCREENSHOTS / "upload-outcomes.png")


def test_a_copy_shows_its_batchs_list_and_warnings_under_a_full_width_header(browser, served):  # noqa: F811
    """At 1400 px the header used to stop short of the cards: a long batch name (a dropped
    file's key runs to 129 characters) widened the page's grid past the window."""
    stores, server = served
    name = "branch_list_" + "x" * 110 + ".csv"
    write_extract(good_frame(rows=600), stores.landing / name)
    assert score(stores, name).success
    (stores.landing / "colleague.csv").write_bytes((stores.landing / name).read_bytes())
    assert score(stores, "colleague.csv").success
    with browser_page(browser, f"{server.url}/?batch=colleague.csv", stores.landing) as tab:
        tab.set_viewport_size({"width": 1400, "height": 1000})
        expect(tab.locator("#status-badge")).to_have_text("scored", timeout=30_000)
        expect(tab.locator("#reason")).to_have_text(
            f"same content as batch {batch_key_for(name)!r}, already scored: its list is shown"
        )
        expect(tab.locator("#fig-rows")).to_have_text("600")
        expect(tab.locator("#candidates tbody tr").first).to_be_visible()
        expect(tab.locator("#warnings li")).to_have_text(
            ["1 × CC_LMT outside the contract's range 0 to 380,000 (e.g. 999999)"]
        )
        expect(tab.locator("#batches tbody tr")).to_have_count(2)
        header, cards, page_width, window = tab.evaluate(
            """[document.querySelector("header").getBoundingClientRect().right,
                Math.max(...[...document.querySelectorAll(".card, .card *")]
                  .map((card) => card.getBoundingClientRect().right)),
                document.documentElement.scrollWidth, window.innerWidth]"""
        )
        assert page_width <= window and header >= cards, (header, cards, page_width, window)
