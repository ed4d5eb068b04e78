"""The explorer as an app, driven in a real browser (issue 14): `python -m avgas explore` serves
notebook 09 on the quick run with Voilà; headless Chromium (Selenium with Debian's chromedriver,
no browser download) moves every control and checks that the right panels redraw, every time.
The same notebook opened in JupyterLab renders live widgets. Screenshots are left in
_build/screenshots/."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avgas import paper, paths

pytestmark = pytest.mark.slow
SHOTS = paths.project_root() / "_build" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, "the server exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"nothing listens on port {port} after {seconds} s")


def _server(cmd: list[str], log: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, **kw)


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    exe, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert exe and driver, "Chromium and chromedriver are missing: make setup installs them (scripts/install-system.sh)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1100", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    b = webdriver.Chrome(options=opts, service=Service(executable_path=driver))  # no Selenium Manager download
    b.set_page_load_timeout(120)
    yield b
    b.quit()


def _png(el):
    from PIL import Image

    return Image.open(io.BytesIO(el.screenshot_as_png)).convert("RGB")


def _state(b) -> dict:
    """What the explorer shows now: its data attributes, each panel's kind, caption and image."""
    return b.execute_script(
        """
        const v = document.querySelector('.avgas-explorer');
        if (!v) return null;
        const panels = [...v.querySelectorAll('.avgas-panel')].map(p => ({
            kind: p.dataset.kind, caption: p.querySelector('figcaption').innerText,
            src: p.querySelector('img').src, width: p.querySelector('img').naturalWidth}));
        const err = document.querySelector('.avgas-error');
        return {fg: v.dataset.fg, bg: v.dataset.bg, lam: v.dataset.lam, level: v.dataset.level, panels,
                error: err ? err.innerText : ''};
        """
    )


def _wait(b, cond, seconds: float = 120, what: str = ""):
    deadline, st = time.time() + seconds, None
    while time.time() < deadline:
        st = _state(b)
        if st and not st["error"] and cond(st):
            return st
        assert not (st and st["error"]), st["error"]
        time.sleep(0.3)
    raise AssertionError(
        f"timed out waiting for {what}; the explorer shows {st and {k: st[k] for k in ('fg', 'bg', 'lam', 'level')}}"
    )


def _complete(st) -> bool:
    """Every panel there and drawn: the spectrogram and four images, none empty."""
    return len(st["panels"]) == 5 and all(p["width"] > 0 for p in st["panels"])


def _slider_keys(b, description: str, key, times: int):
    from selenium.webdriver.common.by import By

    box = b.find_element(
        By.XPATH, f"//div[contains(@class,'widget-slider')][.//*[normalize-space(text())='{description}']]"
    )
    handle = box.find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    for _ in range(times):
        handle.send_keys(key)
        time.sleep(0.15)


def _choose(b, description: str, value: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    box = b.find_element(
        By.XPATH, f"//div[contains(@class,'widget-dropdown')][.//*[normalize-space(text())='{description}']]"
    )
    Select(box.find_element(By.TAG_NAME, "select")).select_by_visible_text(value)


def _image_boxes(b) -> dict:
    """Each panel's image rectangle (kind -> (left, top, right, bottom)) inside the explorer's screenshot."""
    return b.execute_script(
        """
        const v = document.querySelector('.avgas-explorer').getBoundingClientRect();
        const out = {};
        for (const p of document.querySelectorAll('.avgas-explorer .avgas-panel')) {
            const r = p.querySelector('img').getBoundingClientRect();
            out[p.dataset.kind + (out[p.dataset.kind] ? '2' : '')] =
                [r.left - v.left, r.top - v.top, r.right - v.left, r.bottom - v.top].map(Math.round);
        }
        return out;
        """
    )


def _shown(src: str, box):
    """A panel's image (its data URI) at the size the page shows it."""
    import base64
    import io

    from PIL import Image

    png = base64.b64decode(src.split(",", 1)[1])
    return Image.open(io.BytesIO(png)).convert("RGB").resize((box[2] - box[0], box[3] - box[1]))


def _changed(a, b_, box=None) -> float:
    """Share of the box's pixels (all of them without one) that differ by more than 2 levels
    between two screenshots."""
    import numpy as np

    x = np.asarray(a.crop(box) if box else a, dtype=int)
    y = np.asarray(b_.crop(box) if box else b_, dtype=int)
    return float((np.abs(x - y).max(axis=2) > 2).mean())


def test_explore_without_a_run_says_which_command(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "avgas", "explore", str(tmp_path / "nothing")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "python -m avgas run params/quick.yaml" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_the_app_redraws_every_control_in_a_browser(quick_run, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    SHOTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    t0 = time.time()
    app = _server(
        [sys.executable, "-m", "avgas", "explore", str(quick_run), "--port", str(port)], tmp_path / "voila.log"
    )
    try:
        _wait_port(port, app)
        browser.get(f"http://127.0.0.1:{port}/")
        st = _wait(browser, _complete, 240, "the first drawing")
        combos = paper.combinations()
        assert st["bg"] in combos and st["fg"] in combos[st["bg"]]
        view = browser.find_element(By.CSS_SELECTOR, ".avgas-explorer")
        before = _png(view)
        before.save(SHOTS / "explorer-before.png")
        boxes = _image_boxes(browser)
        assert set(boxes) == {"spectrogram", "separated", "separated2", "mixed", "sound2scene"}, boxes

        # λ: only the mixed image depends on it
        _slider_keys(browser, "λ", Keys.ARROW_RIGHT, 6)
        st2 = _wait(browser, lambda s: s["lam"] == "0.80" and _complete(s), 120, "λ = 0.80")
        after = _png(browser.find_element(By.CSS_SELECTOR, ".avgas-explorer"))
        after.save(SHOTS / "explorer-after-lambda.png")
        kinds = {p["kind"]: p["src"] for p in st2["panels"]}
        old = {p["kind"]: p["src"] for p in st["panels"]}
        assert kinds["mixed"] != old["mixed"], "the mixed image did not change with λ"
        assert kinds["spectrogram"] == old["spectrogram"] and kinds["sound2scene"] == old["sound2scene"]
        assert _image_boxes(browser) == boxes, "the panels moved"
        # the screenshots differ in the mixed image, and only there
        # (as far as the two images themselves differ: a small G may change little with λ)
        drawn = _changed(_shown(old["mixed"], boxes["mixed"]), _shown(kinds["mixed"], boxes["mixed"]))
        assert drawn > 0.01, f"the app's two mixed images differ in {drawn:.1%} of their pixels only"
        seen = _changed(before, after, boxes["mixed"])
        assert seen > 0.5 * drawn, f"the mixed image looks the same after moving λ ({seen:.1%} vs {drawn:.1%})"
        for kind in ("separated", "separated2", "sound2scene"):
            assert _changed(before, after, boxes[kind]) == 0, f"the {kind} image changed with λ"
        assert any("λ=0.80" in p["caption"] for p in st2["panels"])

        # the foreground's level changes the mix: spectrogram and baseline redraw
        _slider_keys(browser, "fg level dB", Keys.ARROW_LEFT, 10)
        st3 = _wait(browser, lambda s: s["level"] == "-10" and _complete(s), 120, "level -10 dB")
        assert {p["kind"]: p["src"] for p in st3["panels"]}["spectrogram"] != kinds["spectrogram"]

        # backgrounds, again and again (hail -> sea waves once left a near-blank figure): every
        # redraw shows every panel, and the captions name the new classes
        order = ["sea waves", "hail", "sea waves", *combos, "hail", "sea waves"]
        for bg in order:
            if _state(browser)["bg"] == bg:
                continue
            _choose(browser, "background", bg)
            st = _wait(browser, lambda s, bg=bg: s["bg"] == bg and _complete(s), 120, f"background {bg}")
            assert st["fg"] in combos[bg], (bg, st["fg"])
            captions = " ".join(p["caption"] for p in st["panels"])
            assert f"separated: {bg}" in captions and f"separated: {st['fg']}" in captions
        fg = combos["sea waves"][-1]
        _choose(browser, "foreground", fg)
        st = _wait(browser, lambda s: s["fg"] == fg and _complete(s), 120, f"foreground {fg}")
        assert "detector:" in st["panels"][1]["caption"] and "CLIP:" in st["panels"][1]["caption"]
        _png(browser.find_element(By.CSS_SELECTOR, ".avgas-explorer")).save(SHOTS / "explorer-after-controls.png")

        page = browser.find_element(By.TAG_NAME, "body").text
        assert "No pretrained weights loaded" not in page and "Traceback" not in page
        # long class names are not cut: the dropdown is as wide as its longest option
        sel = browser.find_element(
            By.XPATH, "//div[contains(@class,'widget-dropdown')][.//*[normalize-space(text())='foreground']]//select"
        )
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth + 1", sel)
        print(f"explorer app driven in {time.time() - t0:.0f} s")
    finally:
        _stop(app)


def test_notebook_09_renders_live_widgets_in_jupyterlab(quick_run, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from avgas import app as app_mod

    nb = app_mod.prepare(quick_run)  # notebook 09 with the run's params, nothing executed
    port, token = _free_port(), "avgas-test"
    lab = _server(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nb.parent}", "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root",
        ],
        tmp_path / "lab.log",
        cwd=nb.parent,
    )  # fmt: skip
    try:
        _wait_port(port, lab)
        browser.get(f"http://127.0.0.1:{port}/lab/tree/{nb.name}?token={token}")
        deadline = time.time() + 120
        while time.time() < deadline and not browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"):
            time.sleep(0.5)
        time.sleep(2)
        # Run > Run All Cells, as a user would (again if the first click landed before the kernel was up)
        for _ in range(3):
            browser.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel')][text()='Run']").click()
            time.sleep(0.5)
            browser.find_element(
                By.XPATH, "//div[contains(@class,'lm-Menu-itemLabel')][text()='Run All Cells']"
            ).click()
            deadline = time.time() + 60
            while time.time() < deadline and not browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"):
                time.sleep(0.5)
            if browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"):
                break
        st = _wait(browser, _complete, 300, "the live explorer in JupyterLab")
        widgets = browser.find_elements(
            By.CSS_SELECTOR, ".jp-OutputArea .widget-slider, .jp-OutputArea .widget-dropdown"
        )
        assert len(widgets) >= 5, "live controls did not render"
        assert not browser.find_elements(
            By.XPATH, "//*[contains(@class, 'jp-OutputArea')]//*[contains(text(), 'batch run: the live controls')]"
        )
        browser.execute_script("document.querySelector('.avgas-explorer').scrollIntoView(false)")
        time.sleep(0.5)
        browser.save_screenshot(str(SHOTS / "jupyterlab-explorer.png"))
        assert st["bg"] in paper.combinations()
    finally:
        _stop(lab)
