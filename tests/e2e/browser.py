"""A real headless browser for the console: Debian's Chromium through its ChromeDriver, driven by Selenium.
Every page visited is screenshotted under the test's temp dir, checked by axe-core (from npm) and read for
console errors (a CSP violation, a failed load, a script error), any of which fails the test."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

AXE = Path(__file__).resolve().parent.parent / "browser" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def chromium() -> tuple[str, str]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:  # ./dev installs both; never a silent skip
        pytest.fail("the console's browser test needs chromium and chromedriver (./dev test installs them)")
    return browser, driver


class Browser:
    def __init__(self, shots: Path, downloads: Path) -> None:
        binary, driver_path = chromium()
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        self.driver.set_page_load_timeout(20)
        self.shots, self.downloads = shots, downloads
        self.visited: list[str] = []
        if not AXE.exists():
            pytest.fail(f"no {AXE}: ./dev test installs axe-core from npm (npm ci --prefix tests/browser/axe)")
        self._axe = AXE.read_text()

    def close(self) -> None:
        self.driver.quit()

    @contextlib.contextmanager
    def navigating(self, timeout: float = 20) -> Iterator[None]:
        """Around an action that loads another page (a click, a form submitted): returns once the old page is gone
        and the new one has loaded — a click returns before the navigation it starts, more so on a loaded machine."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        yield
        wait = WebDriverWait(self.driver, timeout)
        wait.until(lambda _driver: _is_gone(old))
        wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")

    def open(self, url: str, shot: str) -> None:
        self.driver.get(url)
        self.checked(shot)

    def checked(self, shot: str, status: int = 200) -> None:
        """The page now shown: screenshot it, fail on console errors and accessibility violations. `status`: the
        page's own expected status (a refused form is a 400), which Chromium logs as a failed load of that page."""
        self.driver.save_screenshot(str(self.shots / f"{len(self.visited):02d}-{shot}.png"))
        self.visited.append(shot)
        expected = (
            f"{self.driver.current_url} - Failed to load resource: the server responded with a status of {status}"
        )
        errors = [
            e
            for e in self.driver.get_log("browser")
            if e["level"] == "SEVERE" and not (status != 200 and e["message"].startswith(expected + " "))
        ]
        assert not errors, f"{shot}: browser console errors {errors}"
        violations = self.axe()
        assert not violations, f"{shot}: accessibility violations\n{json.dumps(violations, indent=1)}"

    def axe(self) -> list[dict[str, Any]]:
        self.driver.execute_script(self._axe)
        results = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"axe.run(document, {{runOnly: {json.dumps(AXE_RULES)}}}).then(r => done(r.violations));"
        )
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:160] for n in v["nodes"][:5]]} for v in results
        ]

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def focus_by_tab(self, target: WebElement, limit: int = 80) -> None:
        """Press Tab from the top of the page until `target` has the focus: it is reachable by keyboard."""
        self.driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
        for _ in range(limit):
            if self.driver.switch_to.active_element == target:
                return
            webdriver.ActionChains(self.driver).send_keys("\ue004").perform()  # Tab
        raise AssertionError(f"{target.tag_name} {target.get_attribute('outerHTML')[:120]} not reachable by Tab")


def _is_gone(old_page: WebElement) -> bool:
    """The old page's root no longer belongs to the shown document. Chromium sometimes says so with an inspector
    error instead of a stale-element one (SeleniumHQ/selenium#15401), which `staleness_of` raises instead of
    reading: it means the same thing, that the navigation replaced the page."""
    try:
        old_page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in (exc.msg or ""):
            return True
        raise
    return False
